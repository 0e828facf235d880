package io.audiosocketbridge.client;

import io.audiosocketbridge.v1.CommandResult;

/** A command the bridge refused, for futures that complete with something else than a result. */
public final class CommandException extends RuntimeException {
  private final CommandResult result;

  public CommandException(CommandResult result) {
    super(result.getCommand() + " failed: " + result.getCode()
        + (result.getMessage().isEmpty() ? "" : ": " + result.getMessage()));
    this.result = result;
  }

  public CommandResult result() {
    return result;
  }
}
