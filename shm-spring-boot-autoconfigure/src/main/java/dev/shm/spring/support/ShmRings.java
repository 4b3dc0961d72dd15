package dev.shm.spring.support;

import dev.shm.core.ring.Channel;
import dev.shm.core.ring.ChannelException;
import dev.shm.core.ring.ChannelOptions;
import dev.shm.core.ring.Subscription;
import dev.shm.core.ring.SubscriptionMode;
import dev.shm.core.segment.Segment;
import dev.shm.core.segment.SegmentException;
import java.time.Duration;
import org.springframework.beans.factory.BeanFactory;
import org.springframework.boot.context.properties.bind.Binder;
import org.springframework.core.env.Environment;

/** Declaring rings and finding the codec, for the shm components. */
public final class ShmRings {

    private ShmRings() {
    }

    /**
     * Declares a channel's ring, translating a declaration that disagrees with another process's
     * into a {@link ShmDeclarationMismatchException} that names the channel's properties, and a ring
     * that finds no room in the segment into a {@link ShmRingSpaceException}.
     *
     * @param segment the segment
     * @param name the channel's name
     * @param options the declaration
     * @return the ring
     */
    public static Channel declare(Segment segment, String name, ChannelOptions options) {
        try {
            return Channel.declare(segment, name, options);
        } catch (SegmentException e) {
            if (e.reason() == SegmentException.Reason.PARAMETER_MISMATCH) {
                throw new ShmDeclarationMismatchException("shm.channels." + name, e);
            }
            if (e.reason() == SegmentException.Reason.NO_SPACE) {
                throw new ShmRingSpaceException(segment.name(), name, e);
            }
            throw e;
        } catch (ChannelException e) {
            if (e.reason() == ChannelException.Reason.GROUPS_FULL) {
                throw e;
            }
            throw new ShmDeclarationMismatchException("shm.channels." + name, e);
        }
    }

    /**
     * Joins a consumer group of a channel, translating what configuration can fix: a ring without a
     * free group entry into an {@link IllegalStateException} that names {@code max-groups}, a group
     * held by another member into a {@link ShmGroupBusyException}, a group that exists with the other
     * {@code required} into a {@link ShmDeclarationMismatchException}.
     *
     * @param ring the channel's ring
     * @param group the consumer group
     * @param required whether the group gates producers
     * @param exclusive whether this member holds the group alone
     * @return the subscription
     */
    public static Subscription subscribe(Channel ring, String group, boolean required, boolean exclusive) {
        try {
            return ring.subscribe(group, required, exclusive ? SubscriptionMode.EXCLUSIVE : SubscriptionMode.SHARED);
        } catch (ChannelException e) {
            if (e.reason() == ChannelException.Reason.GROUP_BUSY) {
                throw new ShmGroupBusyException(ring.name(), group, exclusive, e);
            }
            throw translate(ring, group, e);
        }
    }

    /**
     * Creates a consumer group of a channel without joining it, unless it exists
     * ({@link Channel#declareGroup}): a consumer declares its group when it is set up, so that what
     * this application's producers send before the consumer starts (Spring Integration starts
     * message producers before the shm channels) is kept for it. Translates as
     * {@link #subscribe} does.
     *
     * @param ring the channel's ring
     * @param group the consumer group
     * @param required whether the group gates producers
     */
    public static void declareGroup(Channel ring, String group, boolean required) {
        try {
            ring.declareGroup(group, required);
        } catch (ChannelException e) {
            throw translate(ring, group, e);
        }
    }

    private static RuntimeException translate(Channel ring, String group, ChannelException e) {
        if (e.reason() == ChannelException.Reason.GROUPS_FULL) {
            return new IllegalStateException(e.getMessage() + ": group '" + group + "' finds no free entry; "
                    + "raise shm.channels." + ring.name() + ".max-groups in every process", e);
        }
        if (e.reason() == ChannelException.Reason.LAYOUT_MISMATCH) {
            // The group exists with the other 'required' (another process, or an earlier run).
            return new ShmDeclarationMismatchException("shm.channels." + ring.name() + ".required", e);
        }
        return e;
    }

    /**
     * Returns the drain timeout of a component that was given none of its own: the application's
     * {@code shm.shutdown.drain-timeout}, which bounds every stopping shm component, else
     * {@code fallback}.
     *
     * @param beanFactory the bean factory, or {@code null}
     * @param fallback the component's default
     * @return the drain timeout
     */
    public static Duration drainTimeout(BeanFactory beanFactory, Duration fallback) {
        if (beanFactory != null) {
            Environment environment = beanFactory.getBeanProvider(Environment.class).getIfAvailable();
            if (environment != null) {
                return Binder.get(environment).bind("shm.shutdown.drain-timeout", Duration.class).orElse(fallback);
            }
        }
        return fallback;
    }

    /**
     * Returns the codec to use: the given one, else the application's, else one for
     * {@code byte[]} and {@code String} payloads only.
     *
     * @param codec the component's own codec, or {@code null}
     * @param beanFactory the bean factory, or {@code null}
     * @return the codec
     */
    public static ShmMessageCodec codec(ShmMessageCodec codec, BeanFactory beanFactory) {
        if (codec != null) {
            return codec;
        }
        if (beanFactory != null) {
            ShmMessageCodec bean = beanFactory.getBeanProvider(ShmMessageCodec.class).getIfAvailable();
            if (bean != null) {
                return bean;
            }
        }
        return new ShmMessageCodec(null);
    }
}
