import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Dialect(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIALECT_UNSPECIFIED: _ClassVar[Dialect]
    DIALECT_ASTERISK: _ClassVar[Dialect]
    DIALECT_EXTENDED: _ClassVar[Dialect]

class AudioEncoding(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIO_ENCODING_UNSPECIFIED: _ClassVar[AudioEncoding]
    AUDIO_ENCODING_LINEAR16: _ClassVar[AudioEncoding]
    AUDIO_ENCODING_MULAW: _ClassVar[AudioEncoding]
    AUDIO_ENCODING_ALAW: _ClassVar[AudioEncoding]

class DtmfPhase(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DTMF_PHASE_UNSPECIFIED: _ClassVar[DtmfPhase]
    DTMF_PHASE_BEGIN: _ClassVar[DtmfPhase]
    DTMF_PHASE_END: _ClassVar[DtmfPhase]
    DTMF_PHASE_END_ONLY: _ClassVar[DtmfPhase]

class DtmfSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DTMF_SOURCE_UNSPECIFIED: _ClassVar[DtmfSource]
    DTMF_SOURCE_SIGNALLED: _ClassVar[DtmfSource]
    DTMF_SOURCE_INBAND: _ClassVar[DtmfSource]

class ControlType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONTROL_TYPE_UNSPECIFIED: _ClassVar[ControlType]
    CONTROL_TYPE_HANGUP: _ClassVar[ControlType]
    CONTROL_TYPE_RING: _ClassVar[ControlType]
    CONTROL_TYPE_RINGING: _ClassVar[ControlType]
    CONTROL_TYPE_ANSWER: _ClassVar[ControlType]
    CONTROL_TYPE_BUSY: _ClassVar[ControlType]
    CONTROL_TYPE_TAKEOFFHOOK: _ClassVar[ControlType]
    CONTROL_TYPE_OFFHOOK: _ClassVar[ControlType]
    CONTROL_TYPE_CONGESTION: _ClassVar[ControlType]
    CONTROL_TYPE_FLASH: _ClassVar[ControlType]
    CONTROL_TYPE_WINK: _ClassVar[ControlType]
    CONTROL_TYPE_OPTION: _ClassVar[ControlType]
    CONTROL_TYPE_RADIO_KEY: _ClassVar[ControlType]
    CONTROL_TYPE_RADIO_UNKEY: _ClassVar[ControlType]
    CONTROL_TYPE_PROGRESS: _ClassVar[ControlType]
    CONTROL_TYPE_PROCEEDING: _ClassVar[ControlType]
    CONTROL_TYPE_HOLD: _ClassVar[ControlType]
    CONTROL_TYPE_UNHOLD: _ClassVar[ControlType]
    CONTROL_TYPE_VIDUPDATE: _ClassVar[ControlType]
    CONTROL_TYPE_T38: _ClassVar[ControlType]
    CONTROL_TYPE_SRCUPDATE: _ClassVar[ControlType]
    CONTROL_TYPE_TRANSFER: _ClassVar[ControlType]
    CONTROL_TYPE_CONNECTED_LINE: _ClassVar[ControlType]
    CONTROL_TYPE_REDIRECTING: _ClassVar[ControlType]
    CONTROL_TYPE_T38_PARAMETERS: _ClassVar[ControlType]
    CONTROL_TYPE_CC: _ClassVar[ControlType]
    CONTROL_TYPE_SRCCHANGE: _ClassVar[ControlType]
    CONTROL_TYPE_READ_ACTION: _ClassVar[ControlType]
    CONTROL_TYPE_AOC: _ClassVar[ControlType]
    CONTROL_TYPE_END_OF_Q: _ClassVar[ControlType]
    CONTROL_TYPE_INCOMPLETE: _ClassVar[ControlType]
    CONTROL_TYPE_MCID: _ClassVar[ControlType]
    CONTROL_TYPE_UPDATE_RTP_PEER: _ClassVar[ControlType]
    CONTROL_TYPE_PVT_CAUSE_CODE: _ClassVar[ControlType]
    CONTROL_TYPE_MASQUERADE_NOTIFY: _ClassVar[ControlType]
    CONTROL_TYPE_STREAM_TOPOLOGY_REQUEST_CHANGE: _ClassVar[ControlType]
    CONTROL_TYPE_STREAM_TOPOLOGY_CHANGED: _ClassVar[ControlType]
    CONTROL_TYPE_STREAM_TOPOLOGY_SOURCE_CHANGED: _ClassVar[ControlType]

class ResultCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESULT_CODE_UNSPECIFIED: _ClassVar[ResultCode]
    RESULT_CODE_OK: _ClassVar[ResultCode]
    RESULT_CODE_INVALID_ARGUMENT: _ClassVar[ResultCode]
    RESULT_CODE_FAILED_PRECONDITION: _ClassVar[ResultCode]
    RESULT_CODE_UNSUPPORTED: _ClassVar[ResultCode]
    RESULT_CODE_RESOURCE_EXHAUSTED: _ClassVar[ResultCode]
    RESULT_CODE_CALL_ENDED: _ClassVar[ResultCode]
    RESULT_CODE_CANCELLED: _ClassVar[ResultCode]

class CommandKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COMMAND_KIND_UNSPECIFIED: _ClassVar[CommandKind]
    COMMAND_KIND_ACCEPT: _ClassVar[CommandKind]
    COMMAND_KIND_REJECT: _ClassVar[CommandKind]
    COMMAND_KIND_CLAIM: _ClassVar[CommandKind]
    COMMAND_KIND_PLAY: _ClassVar[CommandKind]
    COMMAND_KIND_MARK: _ClassVar[CommandKind]
    COMMAND_KIND_CLEAR: _ClassVar[CommandKind]
    COMMAND_KIND_SEND_DTMF: _ClassVar[CommandKind]
    COMMAND_KIND_SEND_CONTROL: _ClassVar[CommandKind]
    COMMAND_KIND_HANGUP: _ClassVar[CommandKind]

class MarkResolution(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MARK_RESOLUTION_UNSPECIFIED: _ClassVar[MarkResolution]
    MARK_RESOLUTION_PLAYED: _ClassVar[MarkResolution]
    MARK_RESOLUTION_CLEARED: _ClassVar[MarkResolution]
    MARK_RESOLUTION_CALL_ENDED: _ClassVar[MarkResolution]

class PlayoutEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PLAYOUT_EVENT_TYPE_UNSPECIFIED: _ClassVar[PlayoutEventType]
    PLAYOUT_EVENT_TYPE_HIGH_WATERMARK: _ClassVar[PlayoutEventType]
    PLAYOUT_EVENT_TYPE_LOW_WATERMARK: _ClassVar[PlayoutEventType]
    PLAYOUT_EVENT_TYPE_UNDERRUN: _ClassVar[PlayoutEventType]
    PLAYOUT_EVENT_TYPE_DRAINED: _ClassVar[PlayoutEventType]

class CallEndReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CALL_END_REASON_UNSPECIFIED: _ClassVar[CallEndReason]
    CALL_END_REASON_CALLER_HUNG_UP: _ClassVar[CallEndReason]
    CALL_END_REASON_ASTERISK_ERROR: _ClassVar[CallEndReason]
    CALL_END_REASON_BACKEND_HUNG_UP: _ClassVar[CallEndReason]
    CALL_END_REASON_BACKEND_LOST: _ClassVar[CallEndReason]
    CALL_END_REASON_PROTOCOL_ERROR: _ClassVar[CallEndReason]
    CALL_END_REASON_ACCEPT_TIMEOUT: _ClassVar[CallEndReason]
    CALL_END_REASON_CLAIM_TIMEOUT: _ClassVar[CallEndReason]
    CALL_END_REASON_ALL_BACKENDS_REJECTED: _ClassVar[CallEndReason]
    CALL_END_REASON_SHUTDOWN: _ClassVar[CallEndReason]
    CALL_END_REASON_HANGUP_REQUESTED: _ClassVar[CallEndReason]
    CALL_END_REASON_CALLER_UNRESPONSIVE: _ClassVar[CallEndReason]
    CALL_END_REASON_CALLER_IDLE: _ClassVar[CallEndReason]

class RejectReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REJECT_REASON_UNSPECIFIED: _ClassVar[RejectReason]
    REJECT_REASON_BUSY: _ClassVar[RejectReason]
    REJECT_REASON_DECLINED: _ClassVar[RejectReason]

class CallState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CALL_STATE_UNSPECIFIED: _ClassVar[CallState]
    CALL_STATE_WAITING: _ClassVar[CallState]
    CALL_STATE_CONNECTED: _ClassVar[CallState]
DIALECT_UNSPECIFIED: Dialect
DIALECT_ASTERISK: Dialect
DIALECT_EXTENDED: Dialect
AUDIO_ENCODING_UNSPECIFIED: AudioEncoding
AUDIO_ENCODING_LINEAR16: AudioEncoding
AUDIO_ENCODING_MULAW: AudioEncoding
AUDIO_ENCODING_ALAW: AudioEncoding
DTMF_PHASE_UNSPECIFIED: DtmfPhase
DTMF_PHASE_BEGIN: DtmfPhase
DTMF_PHASE_END: DtmfPhase
DTMF_PHASE_END_ONLY: DtmfPhase
DTMF_SOURCE_UNSPECIFIED: DtmfSource
DTMF_SOURCE_SIGNALLED: DtmfSource
DTMF_SOURCE_INBAND: DtmfSource
CONTROL_TYPE_UNSPECIFIED: ControlType
CONTROL_TYPE_HANGUP: ControlType
CONTROL_TYPE_RING: ControlType
CONTROL_TYPE_RINGING: ControlType
CONTROL_TYPE_ANSWER: ControlType
CONTROL_TYPE_BUSY: ControlType
CONTROL_TYPE_TAKEOFFHOOK: ControlType
CONTROL_TYPE_OFFHOOK: ControlType
CONTROL_TYPE_CONGESTION: ControlType
CONTROL_TYPE_FLASH: ControlType
CONTROL_TYPE_WINK: ControlType
CONTROL_TYPE_OPTION: ControlType
CONTROL_TYPE_RADIO_KEY: ControlType
CONTROL_TYPE_RADIO_UNKEY: ControlType
CONTROL_TYPE_PROGRESS: ControlType
CONTROL_TYPE_PROCEEDING: ControlType
CONTROL_TYPE_HOLD: ControlType
CONTROL_TYPE_UNHOLD: ControlType
CONTROL_TYPE_VIDUPDATE: ControlType
CONTROL_TYPE_T38: ControlType
CONTROL_TYPE_SRCUPDATE: ControlType
CONTROL_TYPE_TRANSFER: ControlType
CONTROL_TYPE_CONNECTED_LINE: ControlType
CONTROL_TYPE_REDIRECTING: ControlType
CONTROL_TYPE_T38_PARAMETERS: ControlType
CONTROL_TYPE_CC: ControlType
CONTROL_TYPE_SRCCHANGE: ControlType
CONTROL_TYPE_READ_ACTION: ControlType
CONTROL_TYPE_AOC: ControlType
CONTROL_TYPE_END_OF_Q: ControlType
CONTROL_TYPE_INCOMPLETE: ControlType
CONTROL_TYPE_MCID: ControlType
CONTROL_TYPE_UPDATE_RTP_PEER: ControlType
CONTROL_TYPE_PVT_CAUSE_CODE: ControlType
CONTROL_TYPE_MASQUERADE_NOTIFY: ControlType
CONTROL_TYPE_STREAM_TOPOLOGY_REQUEST_CHANGE: ControlType
CONTROL_TYPE_STREAM_TOPOLOGY_CHANGED: ControlType
CONTROL_TYPE_STREAM_TOPOLOGY_SOURCE_CHANGED: ControlType
RESULT_CODE_UNSPECIFIED: ResultCode
RESULT_CODE_OK: ResultCode
RESULT_CODE_INVALID_ARGUMENT: ResultCode
RESULT_CODE_FAILED_PRECONDITION: ResultCode
RESULT_CODE_UNSUPPORTED: ResultCode
RESULT_CODE_RESOURCE_EXHAUSTED: ResultCode
RESULT_CODE_CALL_ENDED: ResultCode
RESULT_CODE_CANCELLED: ResultCode
COMMAND_KIND_UNSPECIFIED: CommandKind
COMMAND_KIND_ACCEPT: CommandKind
COMMAND_KIND_REJECT: CommandKind
COMMAND_KIND_CLAIM: CommandKind
COMMAND_KIND_PLAY: CommandKind
COMMAND_KIND_MARK: CommandKind
COMMAND_KIND_CLEAR: CommandKind
COMMAND_KIND_SEND_DTMF: CommandKind
COMMAND_KIND_SEND_CONTROL: CommandKind
COMMAND_KIND_HANGUP: CommandKind
MARK_RESOLUTION_UNSPECIFIED: MarkResolution
MARK_RESOLUTION_PLAYED: MarkResolution
MARK_RESOLUTION_CLEARED: MarkResolution
MARK_RESOLUTION_CALL_ENDED: MarkResolution
PLAYOUT_EVENT_TYPE_UNSPECIFIED: PlayoutEventType
PLAYOUT_EVENT_TYPE_HIGH_WATERMARK: PlayoutEventType
PLAYOUT_EVENT_TYPE_LOW_WATERMARK: PlayoutEventType
PLAYOUT_EVENT_TYPE_UNDERRUN: PlayoutEventType
PLAYOUT_EVENT_TYPE_DRAINED: PlayoutEventType
CALL_END_REASON_UNSPECIFIED: CallEndReason
CALL_END_REASON_CALLER_HUNG_UP: CallEndReason
CALL_END_REASON_ASTERISK_ERROR: CallEndReason
CALL_END_REASON_BACKEND_HUNG_UP: CallEndReason
CALL_END_REASON_BACKEND_LOST: CallEndReason
CALL_END_REASON_PROTOCOL_ERROR: CallEndReason
CALL_END_REASON_ACCEPT_TIMEOUT: CallEndReason
CALL_END_REASON_CLAIM_TIMEOUT: CallEndReason
CALL_END_REASON_ALL_BACKENDS_REJECTED: CallEndReason
CALL_END_REASON_SHUTDOWN: CallEndReason
CALL_END_REASON_HANGUP_REQUESTED: CallEndReason
CALL_END_REASON_CALLER_UNRESPONSIVE: CallEndReason
CALL_END_REASON_CALLER_IDLE: CallEndReason
REJECT_REASON_UNSPECIFIED: RejectReason
REJECT_REASON_BUSY: RejectReason
REJECT_REASON_DECLINED: RejectReason
CALL_STATE_UNSPECIFIED: CallState
CALL_STATE_WAITING: CallState
CALL_STATE_CONNECTED: CallState

class HandleCallRequest(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: CallEvent
    def __init__(self, event: _Optional[_Union[CallEvent, _Mapping]] = ...) -> None: ...

class HandleCallResponse(_message.Message):
    __slots__ = ("accept", "reject", "command")
    ACCEPT_FIELD_NUMBER: _ClassVar[int]
    REJECT_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    accept: AcceptCall
    reject: RejectCall
    command: CallCommand
    def __init__(self, accept: _Optional[_Union[AcceptCall, _Mapping]] = ..., reject: _Optional[_Union[RejectCall, _Mapping]] = ..., command: _Optional[_Union[CallCommand, _Mapping]] = ...) -> None: ...

class ClaimCallRequest(_message.Message):
    __slots__ = ("claim", "command")
    CLAIM_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    claim: ClaimCall
    command: CallCommand
    def __init__(self, claim: _Optional[_Union[ClaimCall, _Mapping]] = ..., command: _Optional[_Union[CallCommand, _Mapping]] = ...) -> None: ...

class ClaimCallResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: CallEvent
    def __init__(self, event: _Optional[_Union[CallEvent, _Mapping]] = ...) -> None: ...

class CallEvent(_message.Message):
    __slots__ = ("started", "audio", "dtmf", "control", "result", "mark", "cleared", "playout", "ended")
    STARTED_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    DTMF_FIELD_NUMBER: _ClassVar[int]
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    MARK_FIELD_NUMBER: _ClassVar[int]
    CLEARED_FIELD_NUMBER: _ClassVar[int]
    PLAYOUT_FIELD_NUMBER: _ClassVar[int]
    ENDED_FIELD_NUMBER: _ClassVar[int]
    started: CallStarted
    audio: AudioChunk
    dtmf: DtmfEvent
    control: ControlEvent
    result: CommandResult
    mark: MarkResolved
    cleared: ClearResult
    playout: PlayoutEvent
    ended: CallEnded
    def __init__(self, started: _Optional[_Union[CallStarted, _Mapping]] = ..., audio: _Optional[_Union[AudioChunk, _Mapping]] = ..., dtmf: _Optional[_Union[DtmfEvent, _Mapping]] = ..., control: _Optional[_Union[ControlEvent, _Mapping]] = ..., result: _Optional[_Union[CommandResult, _Mapping]] = ..., mark: _Optional[_Union[MarkResolved, _Mapping]] = ..., cleared: _Optional[_Union[ClearResult, _Mapping]] = ..., playout: _Optional[_Union[PlayoutEvent, _Mapping]] = ..., ended: _Optional[_Union[CallEnded, _Mapping]] = ...) -> None: ...

class CallStarted(_message.Message):
    __slots__ = ("call_id", "listener", "dialect", "peer_address", "call_sample_rate_hz", "backend_sample_rate_hz", "call_encoding", "start_time")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    LISTENER_FIELD_NUMBER: _ClassVar[int]
    DIALECT_FIELD_NUMBER: _ClassVar[int]
    PEER_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CALL_SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    BACKEND_SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    CALL_ENCODING_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    listener: str
    dialect: Dialect
    peer_address: str
    call_sample_rate_hz: int
    backend_sample_rate_hz: int
    call_encoding: AudioEncoding
    start_time: _timestamp_pb2.Timestamp
    def __init__(self, call_id: _Optional[str] = ..., listener: _Optional[str] = ..., dialect: _Optional[_Union[Dialect, str]] = ..., peer_address: _Optional[str] = ..., call_sample_rate_hz: _Optional[int] = ..., backend_sample_rate_hz: _Optional[int] = ..., call_encoding: _Optional[_Union[AudioEncoding, str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AudioChunk(_message.Message):
    __slots__ = ("pcm", "sample_rate_hz", "sequence_number", "offset_samples")
    PCM_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    OFFSET_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    pcm: bytes
    sample_rate_hz: int
    sequence_number: int
    offset_samples: int
    def __init__(self, pcm: _Optional[bytes] = ..., sample_rate_hz: _Optional[int] = ..., sequence_number: _Optional[int] = ..., offset_samples: _Optional[int] = ...) -> None: ...

class DtmfEvent(_message.Message):
    __slots__ = ("digit", "phase", "duration_ms", "source", "offset_samples")
    DIGIT_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    digit: str
    phase: DtmfPhase
    duration_ms: int
    source: DtmfSource
    offset_samples: int
    def __init__(self, digit: _Optional[str] = ..., phase: _Optional[_Union[DtmfPhase, str]] = ..., duration_ms: _Optional[int] = ..., source: _Optional[_Union[DtmfSource, str]] = ..., offset_samples: _Optional[int] = ...) -> None: ...

class ControlEvent(_message.Message):
    __slots__ = ("type", "raw_code")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    RAW_CODE_FIELD_NUMBER: _ClassVar[int]
    type: ControlType
    raw_code: int
    def __init__(self, type: _Optional[_Union[ControlType, str]] = ..., raw_code: _Optional[int] = ...) -> None: ...

class AsteriskError(_message.Message):
    __slots__ = ("flags", "caller_hangup", "frame_forwarding", "memory", "payload")
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    CALLER_HANGUP_FIELD_NUMBER: _ClassVar[int]
    FRAME_FORWARDING_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    flags: int
    caller_hangup: bool
    frame_forwarding: bool
    memory: bool
    payload: bytes
    def __init__(self, flags: _Optional[int] = ..., caller_hangup: _Optional[bool] = ..., frame_forwarding: _Optional[bool] = ..., memory: _Optional[bool] = ..., payload: _Optional[bytes] = ...) -> None: ...

class CommandResult(_message.Message):
    __slots__ = ("command_id", "code", "message", "backend_sample_rate_hz", "command")
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    BACKEND_SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    code: ResultCode
    message: str
    backend_sample_rate_hz: int
    command: CommandKind
    def __init__(self, command_id: _Optional[str] = ..., code: _Optional[_Union[ResultCode, str]] = ..., message: _Optional[str] = ..., backend_sample_rate_hz: _Optional[int] = ..., command: _Optional[_Union[CommandKind, str]] = ...) -> None: ...

class MarkResolved(_message.Message):
    __slots__ = ("name", "resolution")
    NAME_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    resolution: MarkResolution
    def __init__(self, name: _Optional[str] = ..., resolution: _Optional[_Union[MarkResolution, str]] = ...) -> None: ...

class ResponsePlayout(_message.Message):
    __slots__ = ("response_id", "played_ms", "discarded_ms")
    RESPONSE_ID_FIELD_NUMBER: _ClassVar[int]
    PLAYED_MS_FIELD_NUMBER: _ClassVar[int]
    DISCARDED_MS_FIELD_NUMBER: _ClassVar[int]
    response_id: str
    played_ms: int
    discarded_ms: int
    def __init__(self, response_id: _Optional[str] = ..., played_ms: _Optional[int] = ..., discarded_ms: _Optional[int] = ...) -> None: ...

class ClearResult(_message.Message):
    __slots__ = ("command_id", "responses", "discarded_ms")
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    DISCARDED_MS_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    responses: _containers.RepeatedCompositeFieldContainer[ResponsePlayout]
    discarded_ms: int
    def __init__(self, command_id: _Optional[str] = ..., responses: _Optional[_Iterable[_Union[ResponsePlayout, _Mapping]]] = ..., discarded_ms: _Optional[int] = ...) -> None: ...

class PlayoutEvent(_message.Message):
    __slots__ = ("type", "buffered_ms", "underruns", "response_id")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    BUFFERED_MS_FIELD_NUMBER: _ClassVar[int]
    UNDERRUNS_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_ID_FIELD_NUMBER: _ClassVar[int]
    type: PlayoutEventType
    buffered_ms: int
    underruns: int
    response_id: str
    def __init__(self, type: _Optional[_Union[PlayoutEventType, str]] = ..., buffered_ms: _Optional[int] = ..., underruns: _Optional[int] = ..., response_id: _Optional[str] = ...) -> None: ...

class CallStats(_message.Message):
    __slots__ = ("frames_from_caller", "frames_to_caller", "bytes_from_caller", "bytes_to_caller", "inbound_dropped_ms", "playout_underruns", "silence_frames")
    FRAMES_FROM_CALLER_FIELD_NUMBER: _ClassVar[int]
    FRAMES_TO_CALLER_FIELD_NUMBER: _ClassVar[int]
    BYTES_FROM_CALLER_FIELD_NUMBER: _ClassVar[int]
    BYTES_TO_CALLER_FIELD_NUMBER: _ClassVar[int]
    INBOUND_DROPPED_MS_FIELD_NUMBER: _ClassVar[int]
    PLAYOUT_UNDERRUNS_FIELD_NUMBER: _ClassVar[int]
    SILENCE_FRAMES_FIELD_NUMBER: _ClassVar[int]
    frames_from_caller: int
    frames_to_caller: int
    bytes_from_caller: int
    bytes_to_caller: int
    inbound_dropped_ms: int
    playout_underruns: int
    silence_frames: int
    def __init__(self, frames_from_caller: _Optional[int] = ..., frames_to_caller: _Optional[int] = ..., bytes_from_caller: _Optional[int] = ..., bytes_to_caller: _Optional[int] = ..., inbound_dropped_ms: _Optional[int] = ..., playout_underruns: _Optional[int] = ..., silence_frames: _Optional[int] = ...) -> None: ...

class CallEnded(_message.Message):
    __slots__ = ("reason", "detail", "asterisk_error", "stats")
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    ASTERISK_ERROR_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    reason: CallEndReason
    detail: str
    asterisk_error: AsteriskError
    stats: CallStats
    def __init__(self, reason: _Optional[_Union[CallEndReason, str]] = ..., detail: _Optional[str] = ..., asterisk_error: _Optional[_Union[AsteriskError, _Mapping]] = ..., stats: _Optional[_Union[CallStats, _Mapping]] = ...) -> None: ...

class CallCommand(_message.Message):
    __slots__ = ("command_id", "play", "mark", "clear", "send_dtmf", "send_control", "hangup")
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    PLAY_FIELD_NUMBER: _ClassVar[int]
    MARK_FIELD_NUMBER: _ClassVar[int]
    CLEAR_FIELD_NUMBER: _ClassVar[int]
    SEND_DTMF_FIELD_NUMBER: _ClassVar[int]
    SEND_CONTROL_FIELD_NUMBER: _ClassVar[int]
    HANGUP_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    play: PlayAudio
    mark: Mark
    clear: ClearAudio
    send_dtmf: SendDtmf
    send_control: SendControl
    hangup: Hangup
    def __init__(self, command_id: _Optional[str] = ..., play: _Optional[_Union[PlayAudio, _Mapping]] = ..., mark: _Optional[_Union[Mark, _Mapping]] = ..., clear: _Optional[_Union[ClearAudio, _Mapping]] = ..., send_dtmf: _Optional[_Union[SendDtmf, _Mapping]] = ..., send_control: _Optional[_Union[SendControl, _Mapping]] = ..., hangup: _Optional[_Union[Hangup, _Mapping]] = ...) -> None: ...

class MediaOptions(_message.Message):
    __slots__ = ("sample_rate_hz", "detect_inband_dtmf")
    SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    DETECT_INBAND_DTMF_FIELD_NUMBER: _ClassVar[int]
    sample_rate_hz: int
    detect_inband_dtmf: bool
    def __init__(self, sample_rate_hz: _Optional[int] = ..., detect_inband_dtmf: _Optional[bool] = ...) -> None: ...

class AcceptCall(_message.Message):
    __slots__ = ("media", "command_id")
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    media: MediaOptions
    command_id: str
    def __init__(self, media: _Optional[_Union[MediaOptions, _Mapping]] = ..., command_id: _Optional[str] = ...) -> None: ...

class RejectCall(_message.Message):
    __slots__ = ("reason", "detail")
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    reason: RejectReason
    detail: str
    def __init__(self, reason: _Optional[_Union[RejectReason, str]] = ..., detail: _Optional[str] = ...) -> None: ...

class ClaimCall(_message.Message):
    __slots__ = ("call_id", "listener", "media", "command_id")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    LISTENER_FIELD_NUMBER: _ClassVar[int]
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    listener: str
    media: MediaOptions
    command_id: str
    def __init__(self, call_id: _Optional[str] = ..., listener: _Optional[str] = ..., media: _Optional[_Union[MediaOptions, _Mapping]] = ..., command_id: _Optional[str] = ...) -> None: ...

class PlayAudio(_message.Message):
    __slots__ = ("pcm", "sample_rate_hz", "response_id")
    PCM_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_ID_FIELD_NUMBER: _ClassVar[int]
    pcm: bytes
    sample_rate_hz: int
    response_id: str
    def __init__(self, pcm: _Optional[bytes] = ..., sample_rate_hz: _Optional[int] = ..., response_id: _Optional[str] = ...) -> None: ...

class Mark(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ClearAudio(_message.Message):
    __slots__ = ("response_id",)
    RESPONSE_ID_FIELD_NUMBER: _ClassVar[int]
    response_id: str
    def __init__(self, response_id: _Optional[str] = ...) -> None: ...

class SendDtmf(_message.Message):
    __slots__ = ("digits", "tone_ms", "gap_ms")
    DIGITS_FIELD_NUMBER: _ClassVar[int]
    TONE_MS_FIELD_NUMBER: _ClassVar[int]
    GAP_MS_FIELD_NUMBER: _ClassVar[int]
    digits: str
    tone_ms: int
    gap_ms: int
    def __init__(self, digits: _Optional[str] = ..., tone_ms: _Optional[int] = ..., gap_ms: _Optional[int] = ...) -> None: ...

class SendControl(_message.Message):
    __slots__ = ("type", "raw_code")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    RAW_CODE_FIELD_NUMBER: _ClassVar[int]
    type: ControlType
    raw_code: int
    def __init__(self, type: _Optional[_Union[ControlType, str]] = ..., raw_code: _Optional[int] = ...) -> None: ...

class Hangup(_message.Message):
    __slots__ = ("after_playout",)
    AFTER_PLAYOUT_FIELD_NUMBER: _ClassVar[int]
    after_playout: bool
    def __init__(self, after_playout: _Optional[bool] = ...) -> None: ...

class CallInfo(_message.Message):
    __slots__ = ("call_id", "listener", "dialect", "peer_address", "call_sample_rate_hz", "state", "start_time")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    LISTENER_FIELD_NUMBER: _ClassVar[int]
    DIALECT_FIELD_NUMBER: _ClassVar[int]
    PEER_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CALL_SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    listener: str
    dialect: Dialect
    peer_address: str
    call_sample_rate_hz: int
    state: CallState
    start_time: _timestamp_pb2.Timestamp
    def __init__(self, call_id: _Optional[str] = ..., listener: _Optional[str] = ..., dialect: _Optional[_Union[Dialect, str]] = ..., peer_address: _Optional[str] = ..., call_sample_rate_hz: _Optional[int] = ..., state: _Optional[_Union[CallState, str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListCallsRequest(_message.Message):
    __slots__ = ("listener",)
    LISTENER_FIELD_NUMBER: _ClassVar[int]
    listener: str
    def __init__(self, listener: _Optional[str] = ...) -> None: ...

class ListCallsResponse(_message.Message):
    __slots__ = ("calls",)
    CALLS_FIELD_NUMBER: _ClassVar[int]
    calls: _containers.RepeatedCompositeFieldContainer[CallInfo]
    def __init__(self, calls: _Optional[_Iterable[_Union[CallInfo, _Mapping]]] = ...) -> None: ...

class WatchCallsRequest(_message.Message):
    __slots__ = ("listener",)
    LISTENER_FIELD_NUMBER: _ClassVar[int]
    listener: str
    def __init__(self, listener: _Optional[str] = ...) -> None: ...

class WatchCallsResponse(_message.Message):
    __slots__ = ("started", "ended")
    STARTED_FIELD_NUMBER: _ClassVar[int]
    ENDED_FIELD_NUMBER: _ClassVar[int]
    started: CallInfo
    ended: CallEndedNotice
    def __init__(self, started: _Optional[_Union[CallInfo, _Mapping]] = ..., ended: _Optional[_Union[CallEndedNotice, _Mapping]] = ...) -> None: ...

class CallEndedNotice(_message.Message):
    __slots__ = ("call_id", "reason", "detail")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    reason: CallEndReason
    detail: str
    def __init__(self, call_id: _Optional[str] = ..., reason: _Optional[_Union[CallEndReason, str]] = ..., detail: _Optional[str] = ...) -> None: ...

class HangupCallRequest(_message.Message):
    __slots__ = ("call_id",)
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    def __init__(self, call_id: _Optional[str] = ...) -> None: ...

class HangupCallResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
