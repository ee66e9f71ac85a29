"""Random sentences per language from word pools; "train" and "heldout" draw from disjoint pools.

Each language's words are split by position (even -> train, odd -> heldout), so no word, and therefore no
sentence, of one split appears in the other. Voices (espeak-ng variants) and their rate and pitch ranges are
split the same way.
"""

from __future__ import annotations

import numpy as np

SPLITS = ("train", "heldout")

_POOLS = {
    "en": (
        "people morning water mother paper baby window garden family happy money market father "
        "better river summer pocket movie bottle simple maybe number apple yellow open about "
        "woman table purple coffee button little middle pepper forty ocean beautiful music moment "
        "shoulder photo over monday every travel vision fishing machine jump bubble mobile player "
        "office mirror because pretty world thank you very much good evening welcome home"
    ),
    "es": (
        "hola buenos dias mama papa boca momento ventana familia mañana palabra manzana bonita "
        "mucho gracias amigo pueblo camino película ahora siempre verano madera playa peso "
        "abuelo música primavera pequeño fuego ciudad mapa blanco viaje mirar comer beber "
        "tiempo noche cielo lobo perro pato vamos hablar buscar feliz cambio problema"
    ),
    "de": (
        "guten morgen mama papa wasser mutter fenster garten familie bitte danke schön "
        "himmel sommer bruder apfel vogel brief immer wieder zusammen abend musik wolke "
        "zeitung blume baum kaffee pause mittag frühling bahnhof fahrrad buch bild wunder "
        "schule freund heute morgen woche fisch maus haus platz"
    ),
    "fr": (
        "bonjour maman papa bonsoir merci beaucoup fenêtre jardin famille pomme bouche "
        "musique moment toujours ensemble voyage ville soleil matin bateau poisson montagne "
        "fromage boulangerie parapluie bouteille papillon heureux lumière rivière oiseau "
        "chapeau semaine printemps bureau marché chemin vraiment"
    ),
    "it": (
        "buongiorno mamma papà grazie mille finestra giardino famiglia bocca mela musica "
        "momento sempre insieme viaggio città sole mattina barca pesce montagna formaggio "
        "bottiglia farfalla felice luce fiume uccello cappello settimana primavera"
    ),
    "pt": (
        "bom dia mamãe papai obrigado janela jardim família boca maçã música momento sempre "
        "juntos viagem cidade sol manhã barco peixe montanha queijo garrafa borboleta feliz "
        "luz rio pássaro chapéu semana primavera"
    ),
}

_WORDS = {language: tuple(text.split()) for language, text in _POOLS.items()}
LANGUAGES = tuple(_WORDS)

# espeak-ng voice names per language.
_VOICES = {
    "en": ("en-us", "en", "en-029", "en-gb-x-rp"),
    "es": ("es", "es-419"),
    "de": ("de",),
    "fr": ("fr", "fr-be"),
    "it": ("it",),
    "pt": ("pt", "pt-br"),
}
_VARIANTS = {
    "train": ("m1", "m2", "m3", "m4", "f1", "f2", "f3"),
    "heldout": ("m5", "m6", "m7", "f4", "f5"),
}
# Words per minute and pitch (0-100) ranges, disjoint between splits.
_RATES = {"train": (135, 175), "heldout": (176, 195)}
_PITCHES = {"train": (30, 62), "heldout": (63, 75)}


def words(language: str, split: str) -> list[str]:
    pool = _WORDS[language]
    return list(pool[0::2] if split == "train" else pool[1::2])


def sentence(rng: np.random.Generator, language: str, split: str, count: int) -> str:
    pool = words(language, split)
    chosen = [pool[int(index)] for index in rng.integers(0, len(pool), size=max(1, count))]
    return " ".join(chosen).capitalize() + "."


def voice(rng: np.random.Generator, language: str, split: str) -> tuple[str, int, int]:
    """(espeak-ng voice name with a variant, rate in words per minute, pitch)."""
    base = _VOICES[language][int(rng.integers(0, len(_VOICES[language])))]
    variant = _VARIANTS[split][int(rng.integers(0, len(_VARIANTS[split])))]
    rate = int(rng.integers(_RATES[split][0], _RATES[split][1] + 1))
    pitch = int(rng.integers(_PITCHES[split][0], _PITCHES[split][1] + 1))
    return f"{base}+{variant}", rate, pitch
