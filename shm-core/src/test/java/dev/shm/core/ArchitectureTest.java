package dev.shm.core;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The lines shm-core keeps: no Spring, no {@code sun.misc.Unsafe}, and native code only in
 * {@code dev.shm.core.internal}.
 */
class ArchitectureTest {

    private static JavaClasses classes;

    @BeforeAll
    static void importClasses() {
        classes = new ClassFileImporter()
                .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
                .importPackages("dev.shm.core");
    }

    @Test
    void shmCoreDoesNotDependOnSpring() {
        noClasses().should().dependOnClassesThat().resideInAPackage("org.springframework..")
                .because("shm-core is plain Java; Spring lives in shm-spring-boot-autoconfigure")
                .check(classes);
    }

    @Test
    void shmCoreDoesNotUseUnsafe() {
        noClasses().should().dependOnClassesThat().haveFullyQualifiedName("sun.misc.Unsafe")
                .orShould().dependOnClassesThat().haveFullyQualifiedName("jdk.internal.misc.Unsafe")
                .check(classes);
    }

    @Test
    void onlyTheInternalPackageCallsNativeCode() {
        noClasses().that().resideOutsideOfPackage("dev.shm.core.internal..")
                .should().dependOnClassesThat().haveFullyQualifiedName("java.lang.foreign.Linker")
                .orShould().dependOnClassesThat().haveFullyQualifiedName("java.lang.foreign.SymbolLookup")
                .orShould().callMethodWhere(com.tngtech.archunit.core.domain.JavaCall.Predicates.target(
                        com.tngtech.archunit.base.DescribedPredicate.describe("MemorySegment.reinterpret",
                                target -> target.getOwner().getName().equals("java.lang.foreign.MemorySegment")
                                        && target.getName().equals("reinterpret"))))
                .because("downcalls and reinterpreted addresses are confined to dev.shm.core.internal")
                .check(classes);
    }
}
