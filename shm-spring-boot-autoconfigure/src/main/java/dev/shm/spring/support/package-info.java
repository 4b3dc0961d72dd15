/** The codec, headers, and the sending and consuming machinery shared by the shm components. */
package dev.shm.spring.support;
