/** The {@code shm} health contributor: one indicator per segment. */
package dev.shm.spring.health;
