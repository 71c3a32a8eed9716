"""Container names: validation and random `adjective_surname` names for unnamed containers."""

from __future__ import annotations

import random
import re

from skiff.errors import InvalidArgument

VALID_NAME = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")

ADJECTIVES = (
    "agile amber ardent bold brave breezy bright calm candid careful cheerful clever cosmic "
    "crisp curious daring dazzling deft eager earnest elated fervent fond frosty gallant gentle "
    "gleaming golden happy hardy hopeful humble jolly keen kind lively loyal lucid merry mellow "
    "modest nimble noble patient peaceful placid plucky proud quick quiet radiant relaxed "
    "serene sharp shiny silent sleepy snappy steady stoic sunny swift tender tidy trusty upbeat "
    "valiant vibrant vigilant wise witty zealous"
).split()

SURNAMES = (
    "agnesi albattani archimedes babbage banach bardeen bell bohr boole borg bose brahe "
    "cannon carson cerf chandrasekhar curie darwin dijkstra einstein euclid euler faraday "
    "fermat fermi feynman franklin galileo gauss goldberg goodall hamilton hawking heisenberg "
    "hertz hodgkin hopper hypatia johnson kepler knuth kowalevski lamarr leakey lovelace "
    "lumiere mayer mcclintock meitner mendel mirzakhani morse napier newton nobel noether "
    "pascal pasteur perlman planck poincare ramanujan ritchie roentgen sammet shannon "
    "sinoussi stallman tesla thompson torvalds turing volta wiles wilson wozniak wright yalow"
).split()


def validate_name(name: str) -> str:
    """Docker's rule; returns the name without its leading slash."""
    if not VALID_NAME.match(name):
        raise InvalidArgument(
            f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return name.lstrip("/")


def random_name(taken) -> str:
    """A fresh `adjective_surname`; `taken(name)` says whether a name is in use."""
    for attempt in range(100):
        name = f"{random.choice(ADJECTIVES)}_{random.choice(SURNAMES)}"
        if attempt > 10:
            name += str(random.randint(0, 99))
        if not taken(name):
            return name
    raise RuntimeError("could not find a free container name")
