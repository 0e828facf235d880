package io.audiosocketbridge.client;

import io.audiosocketbridge.v1.CommandResult;

/** A command the bridge refused, for futures that complete with something else than a result. */
public final class CommandException extends RuntimeException {
  private final CommandResult result;

  public CommandException(CommandResult result) {
    super(commandName(result) + " failed: " + result.getCode()
        + (result.getMessage().isEmpty() ? "" : ": " + result.getMessage()));
    this.result = result;
  }

  /** The command's name as in CallCommand ("play", "send_dtmf", ...), or "command". */
  static String commandName(CommandResult result) {
    return switch (result.getCommand()) {
      case COMMAND_KIND_UNSPECIFIED, UNRECOGNIZED -> "command";
      default -> result.getCommand().name().substring("COMMAND_KIND_".length()).toLowerCase();
    };
  }

  public CommandResult result() {
    return result;
  }
}
