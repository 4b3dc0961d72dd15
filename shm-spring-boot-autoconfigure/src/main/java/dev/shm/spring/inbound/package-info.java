/** Inbound endpoints: the channel adapter and the request-reply gateway that receive from shared memory. */
package dev.shm.spring.inbound;
