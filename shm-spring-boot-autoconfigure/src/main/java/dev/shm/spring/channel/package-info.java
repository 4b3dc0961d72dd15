/** Spring Integration message channels over shm channels: subscribable and pollable. */
package dev.shm.spring.channel;
