/** The Java DSL: the {@link dev.shm.spring.dsl.Shm} factory and one spec per component. */
package dev.shm.spring.dsl;
