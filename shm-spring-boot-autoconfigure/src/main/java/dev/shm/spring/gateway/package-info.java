/**
 * Request-reply across processes over the segment's lanes: the outbound gateway (client) and the
 * inbound gateway (service provider).
 */
package dev.shm.spring.gateway;
