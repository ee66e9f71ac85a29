"""Speech from espeak-ng's C library (ctypes): 16 kHz mono audio and the time of every phoneme.

The library keeps wave-generator state (phase, pitch flutter) from one call to the next, so the same text
sounds slightly different each time within one process; the corpus must be byte-for-byte reproducible. Each
synthesis therefore runs in a child interpreter that initialises the library afresh (synchronous mode,
phoneme events as IPA names), speaks once and sends back the int16 samples and the events on its stdout.
Output (22,050 Hz int16) is resampled to 16 kHz.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import pickle  # nosec B403: only between this process and the child it starts (see _speak_in_child)
import subprocess  # nosec B404: a fixed command of this interpreter, see _speak_in_child
import sys
from dataclasses import dataclass

import numpy as np
from scipy.signal import resample_poly

SAMPLE_RATE = 16_000
CHILD_TIMEOUT_S = 60.0
_ESPEAK_RATE = 22_050
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_PHONEME_IPA = 0x0002
_EVENT_PHONEME = 7
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_PARAM_RATE, _PARAM_PITCH = 1, 3


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    # speak_lib.h: espeak_EVENT
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


class SpeechError(RuntimeError):
    """espeak-ng is missing or refused the request (code: speech_unavailable)."""

    code = "speech_unavailable"


@dataclass(frozen=True)
class Phoneme:
    start: float  # seconds from the start of the audio
    name: str  # IPA, as espeak-ng names it ("" or "_" for pauses)


@dataclass(frozen=True)
class Speech:
    audio: np.ndarray  # (samples,) float32 at 16 kHz
    phonemes: tuple[Phoneme, ...]

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE


def _library_path() -> str:
    path = ctypes.util.find_library("espeak-ng") or next(
        iter(sorted(glob.glob("/usr/lib/*/libespeak-ng.so.1"))), None
    )
    if path is None:
        raise SpeechError("libespeak-ng is not installed (apt-get install espeak-ng)")
    return path


def _speak_here(path: str, text: str, voice: str, rate: int, pitch: int) -> tuple[np.ndarray, list[Phoneme]]:
    """One synthesis with a freshly initialised library (runs in the forked child)."""
    lib = ctypes.CDLL(path)
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.POINTER(ctypes.c_uint),
        ctypes.c_void_p,
    ]
    sample_rate = lib.espeak_Initialize(
        _AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_PHONEME_IPA
    )
    if sample_rate != _ESPEAK_RATE:
        raise SpeechError(f"espeak-ng initialisation failed (returned {sample_rate})")
    chunks: list[np.ndarray] = []
    phonemes: list[Phoneme] = []

    def on_audio(wav: ctypes._Pointer, samples: int, events: ctypes._Pointer) -> int:
        if samples > 0:
            chunks.append(np.ctypeslib.as_array(wav, shape=(samples,)).copy())
        index = 0
        while events[index].type != 0:  # espeakEVENT_LIST_TERMINATED
            event = events[index]
            if event.type == _EVENT_PHONEME:
                name = bytes(event.id.string).split(b"\0", 1)[0].decode("utf-8", "replace")
                phonemes.append(Phoneme(event.audio_position / 1000.0, name))
            index += 1
        return 0

    callback = _CALLBACK(on_audio)
    lib.espeak_SetSynthCallback(callback)
    if lib.espeak_SetVoiceByName(voice.encode()) != 0:
        raise SpeechError(f"espeak-ng has no voice {voice!r}")
    lib.espeak_SetParameter(_PARAM_RATE, int(rate), 0)
    lib.espeak_SetParameter(_PARAM_PITCH, int(pitch), 0)
    data = text.encode("utf-8") + b"\0"
    status = lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
    if status != 0:
        raise SpeechError(f"espeak-ng failed to synthesise (status {status})")
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    return audio, phonemes


def _speak_in_child(text: str, voice: str, rate: int, pitch: int) -> tuple[np.ndarray, list[Phoneme]]:
    # A fresh interpreter, not a fork: a fork of a process whose other threads (torch's, OpenMP's) hold
    # locks can hang forever in the child. List arguments, no shell (B603); bounded by a timeout.
    command = [
        sys.executable,
        "-m",
        "model.synth.speech",
        _library_path(),
        text,
        voice,
        str(rate),
        str(pitch),
    ]
    try:
        done = subprocess.run(command, capture_output=True, timeout=CHILD_TIMEOUT_S, check=False)  # nosec B603
    except subprocess.TimeoutExpired as error:
        raise SpeechError(f"espeak-ng gave no answer within {CHILD_TIMEOUT_S:.0f} s") from error
    if done.returncode != 0 or not done.stdout:
        raise SpeechError(
            f"espeak-ng stopped without an answer: {done.stderr.decode(errors='replace')[-300:]}"
        )
    ok, result = pickle.loads(done.stdout)  # nosec B301: written by our own child process, never by a client
    if not ok:
        raise SpeechError(result)
    audio, pairs = result
    return audio, [Phoneme(start, name) for start, name in pairs]


def synthesize(text: str, voice: str, rate: int = 160, pitch: int = 50) -> Speech:
    """`text` spoken by an espeak-ng voice ("en-us", "de+f3", ...): words per minute, pitch 0-100."""
    raw, phonemes = _speak_in_child(text, voice, rate, pitch)
    # 22,050 -> 16,000 Hz is 320/441; polyphase filtering keeps it exact and deterministic.
    audio = resample_poly(raw.astype(np.float32) / 32768.0, 320, 441).astype(np.float32)
    return Speech(np.clip(audio, -1.0, 1.0), tuple(phonemes))


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * SAMPLE_RATE), dtype=np.float32)


def _child_main(arguments: list[str]) -> None:
    path, text, voice, rate, pitch = arguments
    try:
        audio, phonemes = _speak_here(path, text, voice, int(rate), int(pitch))
        # Plain values: this module runs as __main__ here, so its classes would not unpickle in the parent.
        payload = pickle.dumps((True, (audio, [(phoneme.start, phoneme.name) for phoneme in phonemes])))
    except Exception as error:
        payload = pickle.dumps((False, str(error)))
    sys.stdout.buffer.write(payload)


if __name__ == "__main__":
    _child_main(sys.argv[1:])
