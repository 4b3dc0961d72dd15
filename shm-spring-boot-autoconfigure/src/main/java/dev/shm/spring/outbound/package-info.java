/** Outbound endpoints: the channel adapter and the request-reply gateway that send through shared memory. */
package dev.shm.spring.outbound;
