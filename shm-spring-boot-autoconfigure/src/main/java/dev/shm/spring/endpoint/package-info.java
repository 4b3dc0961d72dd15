/** The {@code shm} actuator endpoint: segments, peers, channels, groups, lanes and slot pools. */
package dev.shm.spring.endpoint;
