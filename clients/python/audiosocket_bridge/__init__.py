"""Python client SDK for audiosocket-bridge (asyncio, grpc.aio).

Push mode (the bridge dials you):  server = await serve(handler)
Pull mode (you claim calls):       call = await BridgeClient(target).claim()
Either way handler(call) gets a Call: iterate its events with ``async for``
and answer with play / mark / clear / send_dtmf / send_control / hangup.
"""

from . import wire
from .call import Call, CommandError, Event, Handler
from .pull import PERMANENT_CODES, BridgeClient, BridgeError, ClaimEnded
from .push import CallHandlerServicer, PushServer, serve
from .v1 import bridge_pb2 as pb
from .v1 import bridge_pb2_grpc as pb_grpc

__all__ = [
    "BridgeClient", "BridgeError", "Call", "CallHandlerServicer", "ClaimEnded", "CommandError", "Event", "Handler",
    "PERMANENT_CODES", "PushServer", "pb", "pb_grpc", "serve", "wire",
]  # fmt: skip
__version__ = "0.1.0"
