package dev.shm.spring.integration;

import org.springframework.boot.autoconfigure.EnableAutoConfiguration;
import org.springframework.context.annotation.Configuration;

/** A sending application for the tests: auto-configuration alone, no components. */
@Configuration(proxyBeanMethods = false)
@EnableAutoConfiguration
public class SenderConfiguration {
}
