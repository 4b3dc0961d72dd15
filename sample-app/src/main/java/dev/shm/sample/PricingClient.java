package dev.shm.sample;

import org.springframework.integration.annotation.MessagingGateway;

/** Asks the pricing service, in another process, for a price: a plain Spring Integration gateway. */
@MessagingGateway(defaultRequestChannel = "pricingRequests")
public interface PricingClient {

    /**
     * Returns the price of an item.
     *
     * @param item the item
     * @return its price in cents
     */
    long price(String item);
}
