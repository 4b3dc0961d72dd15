package dev.shm.spring.autoconfigure;

import dev.shm.spring.support.JsonPayloadConverter;
import dev.shm.spring.support.PayloadConverter;
import dev.shm.spring.support.ShmMessageCodec;
import dev.shm.spring.support.TrustedPackages;
import java.util.ArrayList;
import java.util.List;
import org.springframework.beans.factory.BeanFactory;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.AutoConfigurationPackages;
import org.springframework.boot.autoconfigure.condition.ConditionalOnBooleanProperty;
import org.springframework.boot.autoconfigure.condition.ConditionalOnClass;
import org.springframework.boot.autoconfigure.condition.ConditionalOnMissingBean;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Import;
import tools.jackson.databind.json.JsonMapper;

/**
 * Auto-configuration for shared-memory messaging: one {@code Segment} bean per
 * {@code shm.segments} entry, one memfd buffer per {@code shm.buffers} entry and, with Spring
 * Integration, the codec and one {@code MessageChannel} per {@code shm.channels} entry. Backs off
 * entirely with {@code shm.enabled=false}.
 */
@AutoConfiguration(afterName = {
        "org.springframework.boot.integration.autoconfigure.IntegrationAutoConfiguration",
        "org.springframework.boot.jackson.autoconfigure.JacksonAutoConfiguration"})
@ConditionalOnBooleanProperty(name = "shm.enabled", matchIfMissing = true)
@EnableConfigurationProperties(ShmProperties.class)
public final class ShmAutoConfiguration {

    /** Creates the auto-configuration. */
    public ShmAutoConfiguration() {
    }

    /** Segments and memfd buffers. */
    @Configuration(proxyBeanMethods = false)
    @Import(ShmBeanRegistrars.Segments.class)
    static class SegmentsConfiguration {
    }

    /** JSON payloads with Jackson 3. */
    @Configuration(proxyBeanMethods = false)
    @ConditionalOnClass(name = {"tools.jackson.databind.json.JsonMapper", "org.springframework.messaging.Message"})
    static class JsonConfiguration {

        @Bean
        @ConditionalOnMissingBean
        PayloadConverter shmPayloadConverter(ObjectProvider<JsonMapper> mapper, ShmProperties properties,
                                             BeanFactory beanFactory) {
            List<String> trusted = new ArrayList<>(TrustedPackages.DEFAULTS);
            if (AutoConfigurationPackages.has(beanFactory)) {
                trusted.addAll(AutoConfigurationPackages.get(beanFactory));
            }
            trusted.addAll(properties.getCodec().getTrustedPackages());
            ClassLoader loader = beanFactory instanceof org.springframework.beans.factory.config.ConfigurableBeanFactory c
                    && c.getBeanClassLoader() != null ? c.getBeanClassLoader() : ShmAutoConfiguration.class.getClassLoader();
            return new JsonPayloadConverter(mapper.getIfAvailable(() -> JsonMapper.builder().build()),
                    new TrustedPackages(trusted), loader);
        }
    }

    /** Spring Integration: the codec and the message channels. */
    @Configuration(proxyBeanMethods = false)
    @ConditionalOnClass(name = "org.springframework.integration.channel.AbstractMessageChannel")
    @Import(ShmBeanRegistrars.Channels.class)
    static class IntegrationConfiguration {

        @Bean
        @ConditionalOnMissingBean
        ShmMessageCodec shmMessageCodec(ObjectProvider<PayloadConverter> converter) {
            return new ShmMessageCodec(converter.getIfAvailable());
        }
    }
}
