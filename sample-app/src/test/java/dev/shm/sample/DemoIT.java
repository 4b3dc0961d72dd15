package dev.shm.sample;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Runs the README's demo from the packaged jar: four services in separate JVMs exchange orders
 * and prices over shared memory, one is SIGKILLed and started again, and the actuator endpoints
 * answer over HTTP while it runs.
 */
class DemoIT {

    private static final Pattern URL = Pattern.compile("(http://localhost:\\d+/actuator/)shm");

    private static int freePortBase() throws Exception {
        for (int attempt = 0; attempt < 50; attempt++) {
            int base;
            try (ServerSocket socket = new ServerSocket(0)) {
                base = socket.getLocalPort();
            }
            if (base > 65_000) {
                continue;
            }
            boolean free = true;
            for (int p = base; p < base + 4 && free; p++) {
                try (ServerSocket _ = new ServerSocket(p)) {
                    // free
                } catch (java.io.IOException taken) {
                    free = false;
                }
            }
            if (free) {
                return base;
            }
        }
        throw new IllegalStateException("no four free ports in a row");
    }

    @Test
    @Timeout(value = 6, unit = TimeUnit.MINUTES) // four Spring Boot JVMs start on two cores
    void theDemoRunsTheServicesRecoversFromAKillAndLosesNothing() throws Exception {
        Path jar = Path.of(System.getProperty("sample.jar", "target/sample-app.jar"));
        assertThat(jar).exists();
        Path directory = Files.createTempDirectory(Path.of("/dev/shm"), "shm-demo-it");
        try {
            int portBase = freePortBase();
            Process demo = new ProcessBuilder(ProcessHandle.current().info().command().orElse("java"),
                    "--enable-native-access=ALL-UNNAMED", "-jar", jar.toString(), "demo", "--duration", "24s",
                    "--kill-after", "8s", "--rate", "500", "--port-base", Integer.toString(portBase),
                    "--directory", directory.toString()).redirectErrorStream(true).start();
            List<String> lines = new ArrayList<>();
            List<String> checked = new ArrayList<>();
            HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
            try (BufferedReader reader = new BufferedReader(
                    new InputStreamReader(demo.getInputStream(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = reader.readLine()) != null) {
                    lines.add(line);
                    Matcher url = URL.matcher(line);
                    if (url.find() && checked.size() < 4) {
                        // While the demo runs: each service's health answers UP, with the segment.
                        HttpResponse<String> health = http.send(
                                HttpRequest.newBuilder(URI.create(url.group(1) + "health"))
                                        .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
                        assertThat(health.statusCode()).as(health.body()).isEqualTo(200);
                        assertThat(health.body()).contains("\"UP\"");
                        HttpResponse<String> shm = http.send(HttpRequest.newBuilder(URI.create(url.group(1) + "shm"))
                                .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
                        assertThat(shm.statusCode()).as(shm.body()).isEqualTo(200);
                        assertThat(shm.body()).contains("\"demo\"").contains("orders");
                        HttpResponse<String> prometheus = http.send(
                                HttpRequest.newBuilder(URI.create(url.group(1) + "prometheus"))
                                        .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
                        assertThat(prometheus.statusCode()).isEqualTo(200);
                        assertThat(prometheus.body()).contains("shm_ring_capacity");
                        checked.add(url.group(1));
                    }
                }
            } finally {
                if (!demo.waitFor(120, TimeUnit.SECONDS)) {
                    demo.destroyForcibly();
                }
            }
            String output = String.join("\n", lines);
            assertThat(demo.exitValue()).as(output).isZero();
            assertThat(checked).as(output).hasSize(4);
            assertThat(output).contains(">>> SIGKILL billing-2").contains(">>> starting billing-2 again")
                    .containsPattern("orders sent [\\d,]+; audit received [\\d,]+ \\(nothing lost, nothing twice\\)")
                    .containsPattern("recovered 1");
            Matcher sent = Pattern.compile("orders sent ([\\d,]+);").matcher(output);
            assertThat(sent.find()).isTrue();
            assertThat(Long.parseLong(sent.group(1).replace(",", ""))).as("orders flowed").isGreaterThan(1000);
            assertThat(directory).as("the demo removes its directory").doesNotExist();
        } finally { // what a failed demo left behind is not this test's to keep in /dev/shm
            if (Files.exists(directory)) {
                try (var files = Files.walk(directory)) {
                    for (Path file : files.sorted(java.util.Comparator.reverseOrder()).toList()) {
                        Files.deleteIfExists(file);
                    }
                }
            }
        }
    }
}
