package io.audiosocketbridge.client;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** LINEAR16 helpers: samples to little-endian bytes and back. */
public final class Pcm {
  private Pcm() {}

  public static byte[] toBytes(short[] samples) {
    ByteBuffer b = ByteBuffer.allocate(samples.length * 2).order(ByteOrder.LITTLE_ENDIAN);
    for (short s : samples) b.putShort(s);
    return b.array();
  }

  public static short[] toSamples(byte[] pcm) {
    short[] out = new short[pcm.length / 2];
    ByteBuffer.wrap(pcm).order(ByteOrder.LITTLE_ENDIAN).asShortBuffer().get(out);
    return out;
  }
}
