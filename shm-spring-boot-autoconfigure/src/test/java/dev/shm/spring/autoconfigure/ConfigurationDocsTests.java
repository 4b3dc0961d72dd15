package dev.shm.spring.autoconfigure;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * Keeps the configuration reference (docs/configuration.md) and the metadata shipped in the jar in
 * step: every property of one is in the other, with the same default.
 */
class ConfigurationDocsTests {

    private static final Path METADATA = Path.of("target/classes/META-INF/spring-configuration-metadata.json");
    private static final Path DOCS = Path.of("../docs/configuration.md");
    /** Map-valued groups: the metadata lists them, the docs describe their entries. */
    private static final Set<String> GROUPS = Set.of("shm.segments", "shm.channels", "shm.buffers");
    private static final Pattern ROW = Pattern.compile("^\\| `((?:shm|management)\\.[^`]+)` \\|([^|]*)\\|",
            Pattern.MULTILINE);

    private static Map<String, String> metadata() throws IOException {
        JsonNode root = JsonMapper.builder().build().readTree(Files.readString(METADATA));
        Map<String, String> properties = new LinkedHashMap<>();
        for (JsonNode property : root.get("properties")) {
            String name = property.get("name").asString();
            if (!GROUPS.contains(name)) {
                JsonNode value = property.get("defaultValue");
                properties.put(name, value == null || value.isNull() ? "" : value.asString());
            }
        }
        return properties;
    }

    private static Map<String, String> documented() throws IOException {
        Map<String, String> properties = new LinkedHashMap<>();
        Matcher row = ROW.matcher(Files.readString(DOCS));
        while (row.find()) {
            String value = row.group(2).trim();
            properties.put(row.group(1), value.startsWith("`") && value.endsWith("`")
                    ? value.substring(1, value.length() - 1) : value);
        }
        return properties;
    }

    @Test
    void everyPropertyOfTheMetadataIsDocumentedAndNoOther() throws IOException {
        assertThat(documented().keySet()).containsExactlyInAnyOrderElementsOf(metadata().keySet());
    }

    @Test
    void documentedDefaultsAreTheMetadataDefaults() throws IOException {
        Map<String, String> documented = documented();
        metadata().forEach((name, value) -> {
            if (!value.isEmpty()) {
                assertThat(documented.get(name)).as(name).isEqualTo(value);
            }
        });
    }

    @Test
    void everyPropertyHasADescription() throws IOException {
        JsonNode root = JsonMapper.builder().build().readTree(Files.readString(METADATA));
        for (JsonNode property : root.get("properties")) {
            assertThat(property.path("description").asString(""))
                    .as(property.get("name").asString()).isNotBlank();
        }
    }
}
