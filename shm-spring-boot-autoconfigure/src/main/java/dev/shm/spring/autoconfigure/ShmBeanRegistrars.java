package dev.shm.spring.autoconfigure;

import dev.shm.core.memory.MemfdBuffer;
import dev.shm.core.segment.Segment;
import dev.shm.spring.channel.AbstractShmChannel;
import dev.shm.spring.channel.SubscribableShmChannel;
import dev.shm.spring.support.ShmMessageCodec;
import java.util.Map;
import org.springframework.beans.factory.BeanFactory;
import org.springframework.beans.factory.BeanFactoryAware;
import org.springframework.beans.factory.support.BeanDefinitionRegistry;
import org.springframework.beans.factory.support.RootBeanDefinition;
import org.springframework.boot.context.properties.bind.Binder;
import org.springframework.context.EnvironmentAware;
import org.springframework.context.annotation.ImportBeanDefinitionRegistrar;
import org.springframework.core.env.Environment;
import org.springframework.core.type.AnnotationMetadata;

/**
 * Registers one bean per configured segment, memfd buffer and channel, named after its key. A bean
 * of that name defined by the application wins (the registrar backs off for that name).
 */
final class ShmBeanRegistrars {

    private ShmBeanRegistrars() {
    }

    static ShmProperties bind(Environment environment) {
        ShmProperties properties = Binder.get(environment).bind("shm", ShmProperties.class)
                .orElseGet(ShmProperties::new);
        ShmOptions.validate(properties);
        return properties;
    }

    static String applicationName(Environment environment) {
        return environment.getProperty("spring.application.name", "application");
    }

    /** Segments and memfd buffers. */
    static final class Segments implements ImportBeanDefinitionRegistrar, EnvironmentAware {

        private Environment environment;

        @Override
        public void setEnvironment(Environment environment) {
            this.environment = environment;
        }

        @Override
        public void registerBeanDefinitions(AnnotationMetadata metadata, BeanDefinitionRegistry registry) {
            ShmProperties properties = bind(environment);
            String peerName = applicationName(environment);
            for (String name : ShmOptions.segments(properties).keySet()) {
                if (registry.containsBeanDefinition(name)) {
                    continue;
                }
                var options = ShmOptions.segmentOptions(properties, name);
                RootBeanDefinition definition = new RootBeanDefinition(Segment.class,
                        () -> ShmSegmentFactory.open(options, peerName));
                definition.setDestroyMethodName("close");
                registry.registerBeanDefinition(name, definition);
            }
            for (Map.Entry<String, ShmProperties.Buffer> buffer : properties.getBuffers().entrySet()) {
                String name = buffer.getKey();
                if (registry.containsBeanDefinition(name)) {
                    continue;
                }
                long size = buffer.getValue().getSize().toBytes();
                RootBeanDefinition definition = new RootBeanDefinition(MemfdBuffer.class,
                        () -> MemfdBuffer.create(name, size));
                definition.setDestroyMethodName("close");
                registry.registerBeanDefinition(name, definition);
            }
        }
    }

    /** Spring Integration message channels. */
    static final class Channels implements ImportBeanDefinitionRegistrar, EnvironmentAware, BeanFactoryAware {

        private Environment environment;
        private BeanFactory beanFactory;

        @Override
        public void setEnvironment(Environment environment) {
            this.environment = environment;
        }

        @Override
        public void setBeanFactory(BeanFactory beanFactory) {
            this.beanFactory = beanFactory;
        }

        @Override
        public void registerBeanDefinitions(AnnotationMetadata metadata, BeanDefinitionRegistry registry) {
            ShmProperties properties = bind(environment);
            String applicationName = environment.getProperty("spring.application.name", AbstractShmChannel.DEFAULT_GROUP);
            for (Map.Entry<String, ShmProperties.Channel> entry : properties.getChannels().entrySet()) {
                String name = entry.getKey();
                if (registry.containsBeanDefinition(name)) {
                    continue;
                }
                ShmProperties.Channel c = entry.getValue();
                String segment = ShmOptions.segmentOf(properties, name);
                var options = ShmOptions.channelOptions(name, c);
                String group = ShmOptions.group(name, c, applicationName);
                boolean broadcast = c.getType() == ShmProperties.ChannelType.PUBLISH_SUBSCRIBE;
                var drainTimeout = properties.getShutdown().getDrainTimeout();
                RootBeanDefinition definition = new RootBeanDefinition(SubscribableShmChannel.class, () -> {
                    SubscribableShmChannel channel = new SubscribableShmChannel(
                            beanFactory.getBean(segment, Segment.class), name, options,
                            beanFactory.getBean(ShmMessageCodec.class), broadcast);
                    channel.setGroup(group);
                    channel.setRequired(c.isRequired());
                    channel.setExclusive(c.isExclusive());
                    channel.setConcurrency(c.getConcurrency());
                    channel.setDrainTimeout(drainTimeout);
                    return channel;
                });
                definition.setDependsOn(segment);
                registry.registerBeanDefinition(name, definition);
            }
        }
    }
}
