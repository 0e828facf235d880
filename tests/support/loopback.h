#ifndef AUDIOSOCKET_BRIDGE_TESTS_SUPPORT_LOOPBACK_H_
#define AUDIOSOCKET_BRIDGE_TESTS_SUPPORT_LOOPBACK_H_

// A plain TCP client socket to a server the test started on this machine.

namespace audiosocket::testing {

// A blocking TCP connection to 127.0.0.1:`port` (close-on-exec), or -1 with
// errno saying why. `receive_buffer` > 0 sets SO_RCVBUF before connecting,
// so that the window the peer sees is already that small.
int ConnectLoopback(int port, int receive_buffer = 0);

}  // namespace audiosocket::testing

#endif  // AUDIOSOCKET_BRIDGE_TESTS_SUPPORT_LOOPBACK_H_
