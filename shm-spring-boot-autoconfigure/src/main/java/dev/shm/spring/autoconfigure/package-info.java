/** Spring Boot auto-configuration for shm: properties, segment, buffer and channel beans, failure analyzers. */
package dev.shm.spring.autoconfigure;
