package dev.shm.spring.support;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;

/**
 * An allow-list of packages whose types a payload may name. A package trusts its sub-packages;
 * {@code "*"} trusts everything. Array and primitive type names are refused.
 */
public final class TrustedPackages {

    /** Packages trusted by default: the JDK's value and collection types. */
    public static final List<String> DEFAULTS = List.of("java.lang", "java.util");

    private final List<String> packages;
    private final boolean all;

    /**
     * Creates the list.
     *
     * @param packages package names, or {@code "*"}
     */
    public TrustedPackages(Collection<String> packages) {
        List<String> list = new ArrayList<>();
        boolean any = false;
        for (String p : packages) {
            String trimmed = p.trim();
            if (trimmed.equals("*")) {
                any = true;
            } else if (!trimmed.isEmpty()) {
                list.add(trimmed.endsWith(".*") ? trimmed.substring(0, trimmed.length() - 2) : trimmed);
            }
        }
        this.packages = List.copyOf(list);
        this.all = any;
    }

    /**
     * Tells whether a type name is trusted.
     *
     * @param typeName a binary class name such as {@code com.example.Order}
     * @return whether its package, or a package above it, is trusted
     */
    public boolean isTrusted(String typeName) {
        if (typeName.isEmpty() || typeName.startsWith("[") || typeName.indexOf('/') >= 0) {
            return false;
        }
        if (all) {
            return true;
        }
        int dot = typeName.lastIndexOf('.');
        if (dot < 0) {
            return false;
        }
        String pkg = typeName.substring(0, dot);
        for (String trusted : packages) {
            if (pkg.equals(trusted) || pkg.startsWith(trusted + ".")) {
                return true;
            }
        }
        return false;
    }

    /**
     * Returns the trusted packages.
     *
     * @return the list, without {@code "*"}
     */
    public List<String> packages() {
        return packages;
    }

    @Override
    public String toString() {
        return all ? "[*]" : packages.toString();
    }
}
