package io.audiosocketbridge.client;

/**
 * Push mode: decides what to do with each call the bridge offers. Return the call's listener to
 * accept it (the SDK sends AcceptCall unless you called {@link BridgeCall#accept} yourself), or
 * call {@link BridgeCall#reject} and return null. Throwing rejects the call as busy.
 */
@FunctionalInterface
public interface CallHandler {
  CallListener onCall(BridgeCall call) throws Exception;
}
