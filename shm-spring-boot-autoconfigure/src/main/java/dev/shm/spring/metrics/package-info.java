/** Micrometer meters of shm segments, channels, consumer groups, peers and slot classes. */
package dev.shm.spring.metrics;
