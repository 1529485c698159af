"""Crisis screening of user messages, and the helplines shown with the answer.

Every message is screened before retrieval, because a young person in crisis must meet care and a
helpline first, not a list of projects. The screen is a small set of readable rules rather than a
model: it runs offline, in microseconds, and a reviewer can see why any message was flagged.

Three kinds of evidence are combined:

* phrases written about oneself ("jag vill dö", "min pappa slår mig", "cutting myself"),
  expanded from templates so that the third-person form of the same phrase
  ("unga som vill ta livet av sig") is recognised as a topic instead of a crisis;
* phrases that imply the writer without naming them ("vill bara försvinna", "kan ikke mere");
* the themes themselves ("självmord", "selvskade", "domestic violence"), which are a crisis only
  when the message is personal and not a practitioner's question.

When unsure between a crisis and a topic, a personal message errs towards crisis; a message with
professional framing and no personal marker never becomes one.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum

__all__ = [
    "HELPLINES",
    "Concern",
    "Helpline",
    "Level",
    "SafetyAssessment",
    "assess",
    "helplines_for",
]


class Concern(Enum):
    SUICIDE = "suicide"
    SELF_HARM = "self_harm"
    VIOLENCE_AT_HOME = "violence_at_home"


class Level(Enum):
    NONE = "none"
    TOPIC = "topic"
    CRISIS = "crisis"


@dataclass(frozen=True)
class SafetyAssessment:
    level: Level
    concerns: frozenset[Concern]


_SAFE = SafetyAssessment(Level.NONE, frozenset())


# --------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------

_APOSTROPHES = frozenset("'’ʼ`´")  # dropped, so "don't" and "dont" read the same
_QUOTES = frozenset('"“”„«»')  # kept as '"' until quoted speech has been looked at
# Kept, because "kan ikke mere." is a cry and "kan ikke mere søge" is a rule change.
_CLAUSE_PUNCTUATION = frozenset(".,!?;:")
_INVISIBLE = frozenset({"Cc", "Cf", "Mn", "Me"})  # zero-width, joiners, variation selectors
_LETTER_FOLDS = str.maketrans({"æ": "a", "ø": "o", "œ": "o"})
_DIGRAPHS = (("aa", "a"), ("ae", "a"), ("oe", "o"))  # how å, æ and ø are typed without them
_QUOTED = re.compile(r'"[^"]*"')


def _clean(text: str) -> str:
    """Reduce a message to lowercase words and clause punctuation.

    Zero-width characters are dropped rather than turned into spaces because they are used to
    split a word invisibly ("själ\u200bvmord"); emoji and other symbols become spaces because they
    stand between words.
    """
    chars: list[str] = []
    for ch in unicodedata.normalize("NFKC", text).casefold():
        if ch.isspace():
            chars.append(" ")
        elif ch in _APOSTROPHES:
            continue
        elif ch in _QUOTES:
            chars.append('"')
        elif unicodedata.category(ch) in _INVISIBLE:
            continue
        elif ch.isalnum() or ch in _CLAUSE_PUNCTUATION:
            chars.append(ch)
        else:
            chars.append(" ")
    return " ".join("".join(chars).split())


def _fold(text: str) -> str:
    """Strip diacritics so that "sjalvmord", "självmord" and "sjælvmord" read alike."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_LETTER_FOLDS))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _forms(cleaned: str) -> tuple[str, ...]:
    """Return the spellings every rule is tried against.

    The text keeps its diacritics, is folded, and is folded once more with the digraphs people
    type for å/æ/ø ("slaar", "skaerer", "doe"); a rule matching any form counts. Rules are written
    in the folded spelling.
    """
    text = " ".join(cleaned.replace('"', " ").split())
    folded = _fold(text)
    digraphs = folded
    for typed, letter in _DIGRAPHS:
        digraphs = digraphs.replace(typed, letter)
    return tuple(dict.fromkeys((text, folded, digraphs)))


# --------------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------------
# Templates use <NAME> slots. Person slots are filled once with first-person words (the writer:
# a crisis) and once with third-person words (someone else: a topic). Other slots are shared.

_SHARED: dict[str, str] = {
    "EN_ADV": r"(?:(?:just|really|honestly|seriously|literally|actually|sometimes|often|still"
    r"|kinda|kind of|sort of|so|also|even|genuinely|truly|lowkey|always|now|already|almost"
    r"|constantly|fucking) )*",
    "SV_ADV": r"(?:(?:bara|verkligen|ofta|ibland|fortfarande|typ|helst|ocksa|mest|nog|assa"
    r"|liksom|faktiskt|seriost|alltid|jamt|nastan|redan|sa|ju|nu|sjukt|mycket) )*",
    "DA_ADV": r"(?:(?:bare|virkelig|tit|ofte|stadig|helst|ogsa|mest|egentlig|faktisk|seriost"
    r"|nok|altid|nasten|allerede|sa|jo|nu|lidt|sadan|meget|gerne) )*",
    "EN_BE": r"(?:(?:am|is|are|was|were|be|been|have been|has been|feel|feels|felt|get|gets|got"
    r"|keep getting|m|s|re) )?",
    "EN_PERP": r"(?:dad|daddy|father|mum|mom|mother|mam|stepdad|stepfather|stepmum|stepmom"
    r"|parents?|brother|sister|boyfriend|girlfriend|partner|husband|wife|uncle|he|she)",
    "SV_PERP": r"(?:pappa|farsan|far|mamma|morsan|mor|styvpappa|styvfar|styvmamma|styvmor|bror"
    r"|brorsan|syster|pojkvan|pojkvannen|flickvan|kille|killen|partner|sambo|maken|farbror"
    r"|morbror|han|hon|hen|foraldrar|foraldrarna)",
    "DA_PERP": r"(?:far|faren|fatter|mor|moren|mutter|papa|mama|stedfar|stedmor|bror|soster"
    r"|kareste|karesten|mand|manden|onkel|han|hun|foraldre|foraldrene)",
    # Beaten at a game, not by a person: "slog mig i schack", "beat me at chess".
    "NO_GAME": r"(?! (?:\w+ )?(?:i|at|in|pa) (?:\w+ )?(?:schack|skak|chess|spel|spelet|spil|spillet"
    r"|games?|tennis|fotboll|fodbold|football|fifa|pingis|kort|cards|matchen|kampen|finalen"
    r"|final|match|tavlingen|konkurrencen|race)\b)",
    # Dying as a figure of speech: "die of embarrassment", "dø af grin", "dö av skam".
    "LITERAL": r"(?! (?:of|from|af|av) (?:embarrassment|shame|laughter|cringe|boredom|grin"
    r"|skam|skratt|pinsamhet|tristess|kedsomhed)\b| laughing\b)",
    # The end of what was said: "kan ikke mere." but not "kan ikke mere søge om støtte".
    "END": r"(?=\s?[.,!?;:]|\s*$|\s(?:og|and|och|men|but|vil|vill|jeg|jag)\b)",
}

_FIRST_PERSON: dict[str, str] = {
    "EN_I": r"(?:i|im|ive|id)",
    "EN_ME": r"me",
    "EN_MY": r"my",
    "EN_SELF": r"(?:myself|my self|meself)",
    "EN_VICTIM": r"(?:me|us|my (?:mum|mom|mother|mam|sister|brother|little \w+|siblings?))",
    "SV_I": r"(?:jag|ja|jg)",
    "SV_ME": r"(?:mig|mej)",
    "SV_MY": r"(?:min|mitt|mina)",
    "SV_VICTIM": r"(?:mig|mej|oss|(?:min|mitt|mina) (?:mamma|pappa|mor|far|syster|bror"
    r"|lillebror|lillasyster|syskon))",
    "DA_I": r"(?:jeg|jg)",
    "DA_ME": r"mig",
    "DA_MY": r"(?:min|mit|mine)",
    "DA_VICTIM": r"(?:mig|os|(?:min|mit|mine) (?:mor|far|soster|bror|lillebror|lillesoster"
    r"|soskende))",
}
# The reflexive of "mig" is "sig" in both Scandinavian languages, so the slot reuses ME/SELF.
_FIRST_PERSON |= {"SV_SELF": _FIRST_PERSON["SV_ME"], "DA_SELF": _FIRST_PERSON["DA_ME"]}

_THIRD_PERSON: dict[str, str] = {
    "EN_I": r"(?:he|she|they|hes|shes|theyre|theyve|someone|somebody|people|who|kids|youth)",
    "EN_ME": r"(?:him|her|them)",
    "EN_MY": r"(?:his|her|their)",
    "EN_SELF": r"(?:himself|herself|themselves|themself)",
    "EN_VICTIM": r"(?:him|her|them|his \w+|their \w+)",
    "SV_I": r"(?:han|hon|hen|de|dom|man|som|unga|ungdomar|elever|eleven)",
    "SV_ME": r"(?:honom|henne|hen|dem|dom)",
    "SV_MY": r"(?:sin|sitt|sina|hans|hennes|deras)",
    "SV_SELF": r"sig",
    "SV_VICTIM": r"(?:honom|henne|hen|dem|dom|(?:sin|sitt|sina) \w+)",
    "DA_I": r"(?:han|hun|de|man|som|unge|eleven|elever)",
    "DA_ME": r"(?:ham|hende|dem)",
    "DA_MY": r"(?:sin|sit|sine|hans|hendes|deres)",
    "DA_SELF": r"sig",
    "DA_VICTIM": r"(?:ham|hende|dem|(?:sin|sit|sine) \w+)",
}

_SLOT = re.compile(r"<([A-Z_]+)>")


def _compile(template: str, person: Mapping[str, str]) -> re.Pattern[str]:
    """Fill a template's slots and anchor it on word edges, so "do" never matches "dock"."""
    slots = {**_SHARED, **person}
    body = _SLOT.sub(lambda m: slots[m.group(1)], template)
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)")


Rule = tuple[Concern, re.Pattern[str]]

_S, _H, _V = Concern.SUICIDE, Concern.SELF_HARM, Concern.VIOLENCE_AT_HOME

# Phrases about a person. First-person fill: crisis; third-person fill: topic.
_ABOUT_A_PERSON: tuple[tuple[Concern, str], ...] = (
    # -- suicide, English
    (
        _S,
        r"<EN_I> <EN_ADV>(?:want|wants|wanna|wish|wishes|need|needs|would like|d like)(?: to)?"
        r" <EN_ADV>die<LITERAL>",
    ),
    (
        _S,
        r"<EN_I> <EN_ADV>(?:dont|do not|doesnt|does not|no longer) <EN_ADV>(?:want|wanna)"
        r"(?: to)? (?:live|be alive|exist|wake up|be (?:here|around) (?:any ?more|much longer))",
    ),
    (
        _S,
        r"<EN_I> <EN_ADV>(?:wish|wishes|hope|hopes) <EN_I> <EN_ADV>(?:was|were|would be|d be)"
        r" (?:dead|never born)",
    ),
    (
        _S,
        r"<EN_I> <EN_ADV>(?:cant|cannot|can not|couldnt) <EN_ADV>(?:go on|keep going"
        r"|take (?:it|this) any ?more|live like this|do life)",
    ),
    (
        _S,
        r"(?:kill|killing|kills|killed|unalive|unaliving|hang|hanging) <EN_SELF>"
        r"(?! (?:trying|over|with (?:work|this)|for (?:this|work))\b)",
    ),
    (_S, r"(?:end|ending|ends|take|taking|takes) <EN_MY> (?:own )?life"),
    (
        _S,
        r"<EN_I> <EN_ADV>(?:want|wants|wanna|(?:am |is |m )?going|gonna|will|ll|plan"
        r"|(?:am |m )?planning)(?: to)? end (?:it all|everything|it)<END>",
    ),
    (_S, r"(?:no one|noone|nobody) would (?:even )?(?:miss|notice|care if) <EN_ME>"),
    (
        _S,
        r"<EN_I> <EN_ADV>(?:took|have taken|ve taken|swallowed) (?:too many|all (?:<EN_MY>|the)"
        r"|a lot of|loads of|a bunch of) (?:pills|tablets|painkillers)",
    ),
    (_S, r"better off (?:without <EN_ME>|if <EN_I> (?:was|were)(?:nt| not) (?:here|around|alive))"),
    (_S, r"<EN_I> <EN_ADV><EN_BE><EN_ADV>(?:suicidal|better off dead)"),
    (
        _S,
        r"<EN_I> <EN_ADV>(?:have|has|get|gets|keep having|ve had|ve been having|m having"
        r"|am having|had) <EN_ADV>(?:suicidal|suicide) (?:thoughts|feelings|ideas|urges)",
    ),
    (
        _S,
        r"<EN_I> <EN_ADV>(?:think|thinks|keep thinking|ve been thinking|m thinking|am thinking"
        r"|thought) (?:about|of) (?:suicide|killing <EN_SELF>|ending it|ending <EN_MY> life)",
    ),
    (_S, r"let <EN_ME> die"),
    # -- suicide, Swedish
    (_S, r"(?:<SV_I> <SV_ADV>vill|vill <SV_I>) <SV_ADV>do<LITERAL>"),
    (
        _S,
        r"(?:<SV_I> <SV_ADV>vill|vill <SV_I>) <SV_ADV>inte <SV_ADV>(?:leva|finnas|existera"
        r"|vakna)",
    ),
    (
        _S,
        r"(?:<SV_I> <SV_ADV>orkar|orkar <SV_I>) inte <SV_ADV>(?:leva|finnas|mer med livet"
        r"|mer<END>|langre<END>)",
    ),
    (_S, r"(?:<SV_I> <SV_ADV>vill|vill <SV_I>) <SV_ADV>forsvinna"),
    (_S, r"(?:ta|tar|tog|tagit|tas) livet av <SV_SELF>"),
    (_S, r"(?:ta|tar|avsluta|avslutar) <SV_MY> (?:eget )?liv"),
    (_S, r"(?:doda|dodar|dodade|hanga|hanger|hangde) <SV_SELF>"),
    (_S, r"battre (?:utan <SV_ME>|om <SV_I> (?:var dod|inte fanns|dog|forsvann))"),
    (
        _S,
        r"<SV_I> <SV_ADV>(?:onskar|onskade) (?:att )?<SV_I> (?:var dod|aldrig fotts"
        r"|inte fanns|slapp vakna)",
    ),
    (
        _S,
        r"<SV_I> <SV_ADV>(?:har|far|fick|har haft|tanker pa|har tankt pa|funderar pa"
        r"|har funderat pa) <SV_ADV>(?:sjalvmord\w*|att ta livet av <SV_SELF>|att do)",
    ),
    (_S, r"<SV_I> <SV_ADV>(?:ar|blir|kanner <SV_SELF>) <SV_ADV>(?:suicidal|sjalvmordsbenagen)"),
    (_S, r"ingen skulle (?:ens )?(?:sakna|marka) <SV_ME>"),
    (
        _S,
        r"<SV_I> <SV_ADV>(?:tog|har tagit|svalde) (?:for manga|alla|massa|en massa)"
        r" (?:tabletter|piller|tabletterna|pillren)",
    ),
    (_S, r"lat <SV_ME> do"),
    # -- suicide, Danish
    (_S, r"(?:<DA_I> <DA_ADV>vil|vil <DA_I>) <DA_ADV>do<LITERAL>"),
    (
        _S,
        r"(?:<DA_I> <DA_ADV>vil|vil <DA_I>) <DA_ADV>ikke <DA_ADV>(?:leve|eksistere|vagne"
        r"|vare (?:her|til) (?:mere|langere))",
    ),
    (
        _S,
        r"(?:<DA_I> <DA_ADV>kan|kan <DA_I>) ikke <DA_ADV>(?:mere|mer|klare (?:det )?mere"
        r"|leve (?:mere|langere))<END>",
    ),
    (_S, r"(?:<DA_I> <DA_ADV>orker|orker <DA_I>) ikke <DA_ADV>(?:mere|at leve|livet)"),
    (_S, r"(?:<DA_I> <DA_ADV>vil|vil <DA_I>) <DA_ADV>forsvinde"),
    (_S, r"<DA_I> <DA_ADV>har <DA_ADV>lyst til at do<LITERAL>"),
    (_S, r"(?:tage|tager|tog|taget) <DA_MY> (?:eget )?liv"),
    (_S, r"(?:tage|tager|tog|taget) livet af <DA_SELF>"),
    (_S, r"(?:sla|slar|slog|slaet) <DA_SELF>(?: selv)? ihjel"),
    (_S, r"gore en ende pa <DA_MY> liv"),
    (_S, r"bedre (?:af )?uden <DA_ME>"),
    (_S, r"<DA_I> <DA_ADV>(?:onsker|ville onske|onskede) (?:at )?<DA_I> (?:var|er) dod"),
    (
        _S,
        r"<DA_I> <DA_ADV>(?:har|far|fik|har haft|tanker pa|har tankt pa) <DA_ADV>"
        r"(?:selvmord\w*|at tage <DA_MY> (?:eget )?liv|at do)",
    ),
    (_S, r"<DA_I> <DA_ADV>(?:er|foler <DA_SELF>) <DA_ADV>(?:suicidal|selvmordstruet)"),
    (_S, r"ingen ville (?:engang )?(?:savne|opdage) <DA_ME>"),
    (
        _S,
        r"<DA_I> <DA_ADV>(?:tog|har taget|slugte) (?:for mange|alle|en masse)"
        r" (?:piller|pillerne|tabletter|tabletterne)",
    ),
    (_S, r"lad <DA_ME> do"),
    # -- self-harm, English
    (
        _H,
        r"(?:cut|cuts|cutting|hurt|hurts|hurting|harm|harms|harming|burn|burns|burning|burnt"
        r"|burned|scratch|scratching|punch|punching|hit|hitting|starve|starving) <EN_SELF>"
        r"(?! (?:shaving|by accident|accidentally|on (?:a|the|some|glass|paper)|while|when"
        r"|playing|cooking|at (?:the )?(?:gym|work|training)|in (?:the|a) (?:kitchen|accident|fall)"
        r"|some slack|a (?:slice|piece)|off)\b)",
    ),
    (
        _H,
        r"(?:cut|cuts|cutting|slit|slitting|slash|slashing) <EN_MY> (?:wrists?|arms?|thighs?"
        r"|legs?|skin)",
    ),
    (
        _H,
        r"<EN_I> <EN_ADV>(?:have |has |ve |had |d )?(?:been |started |start |keep |kept "
        r"|relapsed and |am |m |is |s )?<EN_ADV>(?:self ?harm(?:ing|ed|s)?|self ?injur(?:ing|e|ed)"
        r"|cutting(?: again|<END>))",
    ),
    # -- self-harm, Swedish ("skada sig" alone is an ordinary injury, so it needs "själv")
    # "skär sig" is also "clash", so this one has no third-person form.
    (
        _H,
        r"(?:skar|skara|skurit|skuren|rispar|rispa|rispat|rispade) (?:mig|mej)(?: sjalv)?"
        r"(?! (?:i (?:fingret|tummen|handen|hjartat)|pa (?:kniven|en|ett|papper|glas)|mellan"
        r"|med)\b)",
    ),
    (
        _H,
        r"(?:skadar|skada|skadat|skadade|slar|sla|slog|branner|branna|brande|bent) <SV_SELF>"
        r" sjalva?",
    ),
    (
        _H,
        r"<SV_I> <SV_ADV>(?:har )?(?:sjalvskadar|sjalvskadat|sjalvskadade|cuttar|cuttat"
        r"|cuttade)",
    ),
    # -- self-harm, Danish
    (_H, r"(?:skarer|skare|skar|skaret) (?:i )?<DA_SELF> selv"),
    (_H, r"(?:skarer|skare|skar|skaret) i <DA_SELF>"),
    (_H, r"(?:skader|skade|skadede|skadet|brander|brande|brandte|slar|sla|slog) <DA_SELF> selv"),
    (_H, r"(?:gor|gore|gjorde) skade pa <DA_SELF> selv"),
    (_H, r"<DA_I> <DA_ADV>(?:har )?(?:selvskader|selvskadet|selvskadede|cutter|cuttet)"),
    # -- violence at home, English
    (
        _V,
        r"<EN_PERP> <EN_ADV>(?:hits|hit|beats|beat|kicks|kicked|chokes|choked|strangles"
        r"|strangled|slaps|slapped|punches|punched|hurts|hurt|abuses|abused|attacks|attacked"
        r"|threatens|threatened) <EN_VICTIM><NO_GAME>(?! (?:up|to|back|with)\b)",
    ),
    (
        _V,
        r"<EN_I> <EN_ADV><EN_BE><EN_ADV>(?:hit|beaten|kicked|abused|hurt|slapped|choked"
        r"|threatened|punched) (?:at home|by <EN_MY> \w+)",
    ),
    (
        _V,
        r"<EN_I> <EN_ADV><EN_BE><EN_ADV>(?:scared|afraid|terrified|frightened) (?:to go"
        r"|of going|to come|of coming) home",
    ),
    (
        _V,
        r"<EN_I> <EN_ADV><EN_BE><EN_ADV>(?:scared|afraid|terrified|frightened) of <EN_MY>"
        r" <EN_PERP>",
    ),
    (_V, r"<EN_I> <EN_ADV>(?:dont|do not|doesnt|does not|never) feel safe (?:at )?home"),
    (_V, r"<EN_I> <EN_ADV><EN_BE>(?:not|never) safe (?:at )?home"),
    # -- violence at home, Swedish
    (
        _V,
        r"<SV_PERP> <SV_ADV>(?:slar|slog|slagit|sparkar|sparkade|misshandlar|misshandlade"
        r"|misshandlat|stryper|strypte|hotar|hotade|knuffar|knuffade) <SV_VICTIM>"
        r"<NO_GAME>(?! (?:som|med hapnad)\b)",
    ),
    (
        _V,
        r"<SV_I> <SV_ADV>(?:blir|har blivit|blev|ar) <SV_ADV>(?:slagen|slagna|misshandlad"
        r"|sparkad|hotad)<NO_GAME>(?! av (?:tanken|hur)\b)",
    ),
    (
        _V,
        r"<SV_I> <SV_ADV>(?:ar|blir|kanner <SV_SELF>) <SV_ADV>(?:radd|livradd|skraj)"
        r" (?:for )?(?:att )?(?:ga|komma|aka) hem",
    ),
    (_V, r"<SV_I> <SV_ADV>vagar inte <SV_ADV>(?:ga|komma|aka) hem"),
    (_V, r"radd for <SV_MY> <SV_PERP>"),
    (_V, r"<SV_I> <SV_ADV>(?:ar|kanner <SV_SELF>) inte <SV_ADV>(?:trygg|saker) hemma"),
    # -- violence at home, Danish
    (
        _V,
        r"<DA_PERP> <DA_ADV>(?:slar|slog|sparker|sparkede|tasker|tavede|tavet|banker|bankede"
        r"|kvaler|kvalte|truer|truede|mishandler|mishandlede) <DA_VICTIM>"
        r"<NO_GAME>(?! (?:som|ihjel)\b)",
    ),
    (
        _V,
        r"<DA_I> <DA_ADV>(?:bliver|blev|er blevet) <DA_ADV>(?:slaet|slat|tavet|banket|sparket"
        r"|mishandlet|truet)<NO_GAME>",
    ),
    (_V, r"<DA_I> <DA_ADV>er <DA_ADV>(?:bange|angst|rad|radd) for at (?:ga|komme|tage) hjem"),
    (_V, r"<DA_I> <DA_ADV>tor ikke <DA_ADV>(?:at )?(?:ga|komme|tage) hjem"),
    (_V, r"bange for <DA_MY> <DA_PERP>"),
    (_V, r"<DA_I> <DA_ADV>(?:er|foler <DA_SELF>) ikke <DA_ADV>(?:tryg|sikker) (?:der)?hjemme"),
)

# Phrases that leave the writer implicit (pronoun dropped, or no person at all).
_IMPLIED: tuple[tuple[Concern, str], ...] = (
    (_S, r"(?:want to|wanna) die<LITERAL>"),
    (_S, r"no (?:reason|point) (?:to live|in living|to go on|in going on|to keep living)"),
    (_S, r"better off dead|unalive|(?<!\d )kms(?! (?:away|from|to|of)\b)"),
    (
        _S,
        r"how (?:to|do you|do i|can i) (?:kill (?:yourself|myself)|commit suicide"
        r"|end (?:your|my) life)|painless (?:way|ways|method) to (?:die|kill)",
    ),
    (_S, r"vill (?:bara |helst )?(?:do<LITERAL>|forsvinna)|vill inte (?:leva|finnas)"),
    (
        _S,
        r"orkar inte (?:leva|finnas|mer med livet)|ingen (?:mening|ide|anledning)"
        r" (?:med |att )?(?:att )?leva",
    ),
    (_S, r"hur (?:tar man|kan man ta) livet av sig|smartfritt satt att do"),
    (
        _S,
        r"vil (?:bare |helst |gerne )?(?:do<LITERAL>|forsvinde)|vil ikke (?:leve|vare her) (?:mere"
        r"|langere)",
    ),
    (_S, r"(?:kan|orker) ikke mere<END>|orker ikke (?:at leve|livet)"),
    (_S, r"(?:want|wanna) to (?:just )?disappear|(?:ikke|inte) (?:vard|vart) at{1,2} lev[ea]"),
    (_S, r"ingen (?:mening|grund) (?:med|til) at leve|gore en ende pa det hele"),
    (_S, r"hvordan (?:tager|kan) man (?:sit eget liv|livet af sig)"),
    (_V, r"(?:vald|brak) hemma|(?:vold|ballade) (?:der)?hjemme|violence at my home"),
    (_V, r"<SV_PERP> <SV_ADV>(?:slar|slog|misshandlar) (?:mamma|pappa)"),
    (_V, r"<DA_PERP> <DA_ADV>(?:slar|slog|tasker|banker) (?:mor|far|mama|papa)"),
)

# The themes by name, in any inflection or compound ("självmordstankar", "selvskadende").
_THEMES: tuple[tuple[Concern, str], ...] = (
    (_S, r"\w*(?:suicid|sjalvmord|selvmord)\w*"),
    (_H, r"self ?(?:harm|injur)\w*|nssi|\w*(?:sjalvskad|selvskad)\w*"),
    (
        _V,
        r"domestic (?:violence|abuse)|(?:violence|abuse) (?:at|in the) home"
        r"|(?:intimate )?partner (?:violence|abuse)|family violence|child abuse"
        r"|honou?r (?:based|related) (?:violence|abuse)",
    ),
    (
        _V,
        r"vald i (?:hemmet|nara relation\w*|familjen)|\w*(?:familjevald|partnervald|hedersvald)"
        r"|hedersrelaterat vald|barnmisshandel",
    ),
    (
        _V,
        r"vold i (?:hjemmet|nare relation\w*|familien)|\w*(?:familievold|partnervold)"
        r"|aresrelateret vold|bornemishandling",
    ),
)

# Typos of the theme words that still read as the word ("sucide", "självmrod", "selvmor").
_FUZZY_WORDS: tuple[tuple[Concern, str], ...] = (
    (_S, "suicide"),
    (_S, "suicidal"),
    (_S, "sjalvmord"),
    (_S, "selvmord"),
    (_S, "sjalvmordstankar"),
    (_S, "selvmordstanker"),
    (_H, "sjalvskada"),
    (_H, "selvskade"),
)

# The writer is speaking of themselves or their own home.
_PERSONAL = (
    r"i (?:am|m|have|ve|was|feel|think|want|wanna|need|cant|cannot|dont|do|did|keep|just"
    r"|really|can|will|would|hate|wish|get|got|started|tried|try|know|still|often|always"
    r"|sometimes|never)|im|ive|me|my|myself|mine",
    r"jag|mig|mej|min|mitt|mina|hemma",
    r"jeg|mig|min|mit|mine|hjemme|derhjemme",
)

# The writer says how they feel, which keeps a message personal despite professional words.
_DISTRESS = (
    r"<EN_I> <EN_ADV><EN_BE><EN_ADV>(?:so |very |really |completely )?(?:sad|depressed|hopeless"
    r"|worthless|lonely|scared|terrified|empty|numb|desperate|broken|a burden|like a burden)",
    r"<SV_I> <SV_ADV>(?:ar|kanner <SV_SELF>|mar) <SV_ADV>(?:ledsen|deprimerad|hopplos|vardelos"
    r"|ensam|radd|livradd|tom|desperat|daligt|skit|som skit|som en borda)",
    r"<DA_I> <DA_ADV>(?:er|foler <DA_SELF>|har det) <DA_ADV>(?:ked af det|deprimeret|hablos"
    r"|vardilos|ensom|bange|tom|desperat|darligt|skidt|svart|som en byrde)",
)

# Someone else is the subject; only consulted when nothing marks the writer.
_THIRD_PARTY = (
    r"he|she|they|him|them|his|their|hes|shes|theyre",
    r"han|hon|hen|honom|henne|hans|hennes|deras|sin|sitt|sina|sig",
    r"hun|ham|hende|hendes|deres|sit|sine",
)

# Professional or informational framing: a practitioner asking about a theme.
_PROFESSIONAL = (
    r"projects?|programmes?|programs?|initiatives?|prevent\w*|statistics?|stats|data|research\w*"
    r"|studies|methods?|methodolog\w*|evidence|interventions?|young people|youths?|youngsters"
    r"|teenagers|adolescents|students|pupils|participants|clients|target groups?"
    r"|practitioners?|professionals?|staff|colleagues?|organi[sz]ations?|municipalit\w*"
    r"|funding|guidelines?|toolkits?|materials?|workshops?|awareness|among|information|info"
    r"|resources|literature|reports?|articles?|presentations?|courses?|conferences?|seminars?"
    r"|webinars?|rates|risk factors|warning signs|a young person|a participant|a client|a pupil"
    r"|what (?:do|should|can|could) we",
    r"how (?:do|can|should|could) (?:we|staff|practitioners|professionals|youth workers|schools"
    r"|one|i support|i help|i talk|i respond)",
    r"\w*(?:projekt|prevention|forebygg|statistik|forskning|metod|insats|malgrupp|material"
    r"|rapport|litteratur|vagledning|vejledning|kartlagg|kortlag|riktlinje|retningslinje)\w*",
    r"unga|ungdomar\w*|elever(?:na)?|eleven|deltagare\w*|personalen|medarbetare|kollegor"
    r"|kommun\w*|bland|studier|kurs|kurser|konferens\w*|seminari\w*|webinar\w*|information"
    r"|riskfaktorer|varningstecken|ungdom\w*|en ung person|en elev",
    r"vad (?:gor|ska|kan|sager|bor) (?:vi|man)",
    r"hur (?:arbetar|jobbar|kan|ska|bor|bemoter|moter|pratar|stottar|hjalper) (?:vi|man|ni"
    r"|personal\w*|skolan|skolor)",
    r"unge|ungdomme\w*|elever(?:ne)?|deltager\w*|medarbejder\w*|personale\w*|kolleger"
    r"|kommune\w*|blandt|undersogelse\w*|kursus|kurser|konference\w*|seminar\w*|information"
    r"|risikofaktorer|advarselstegn|ungdom\w*|en ung|en elev",
    r"hvad (?:gor|skal|kan|siger|bor) (?:vi|man)",
    r"hvordan (?:arbejder|kan|skal|bor|taler|moder|hjalper|stotter) (?:vi|man|i|personale\w*"
    r"|skolen|skoler)",
)


def _rules(templates: Iterable[tuple[Concern, str]], person: Mapping[str, str]) -> list[Rule]:
    return [(concern, _compile(template, person)) for concern, template in templates]


def _markers(alternatives: Iterable[str]) -> list[re.Pattern[str]]:
    return [_compile(alternative, _FIRST_PERSON) for alternative in alternatives]


_OWN_RULES = _rules(_ABOUT_A_PERSON, _FIRST_PERSON)
_OTHERS_RULES = [
    rule
    for rule, own in zip(_rules(_ABOUT_A_PERSON, _THIRD_PERSON), _OWN_RULES, strict=True)
    if rule[1].pattern != own[1].pattern  # a template with no person slot is the writer's
]
_IMPLIED_RULES = _rules(_IMPLIED, _FIRST_PERSON)
_THEME_RULES = _rules(_THEMES, _FIRST_PERSON)
_PERSONAL_MARKERS = _markers(_PERSONAL)
_DISTRESS_MARKERS = _markers(_DISTRESS)
_THIRD_PARTY_MARKERS = _markers(_THIRD_PARTY)
_PROFESSIONAL_MARKERS = _markers(_PROFESSIONAL)
_WORD = re.compile(r"\w+")


def _concerns(rules: Iterable[Rule], forms: tuple[str, ...]) -> set[Concern]:
    return {concern for concern, rx in rules if any(rx.search(form) for form in forms)}


def _present(markers: Iterable[re.Pattern[str]], forms: tuple[str, ...]) -> bool:
    return any(rx.search(form) for rx in markers for form in forms)


def _one_edit_apart(a: str, b: str) -> bool:
    """Damerau distance of at most one: the typos people make while upset on a phone."""
    if a == b:
        return True
    if len(a) == len(b):
        diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        return len(diff) == 1 or (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and a[diff[0]] == b[diff[1]]
            and a[diff[1]] == b[diff[0]]
        )
    short, long_ = sorted((a, b), key=len)
    if len(long_) - len(short) != 1:
        return False
    i = 0
    while i < len(short) and short[i] == long_[i]:
        i += 1
    return short[i:] == long_[i + 1 :]


def _misspelt_themes(forms: tuple[str, ...]) -> set[Concern]:
    """Whole words only: matching inside compounds would turn "selvmodsigende" into suicide."""
    words = {word for form in forms for word in _WORD.findall(form) if len(word) >= 6}
    return {
        concern
        for concern, target in _FUZZY_WORDS
        for word in words
        if abs(len(word) - len(target)) <= 1 and _one_edit_apart(word, target)
    }


def assess(text: str) -> SafetyAssessment:
    """Decide whether a message shows crisis, mentions a crisis theme, or neither.

    Professional framing only ever lowers a level, and only when the writer does not also
    say how they feel: "I'm suicidal, are there projects for young people like me?" stays a
    crisis. First-person speech inside quotation marks in a practitioner's question is a quote
    ("a participant said “I want to die”"), not the practitioner's own crisis.
    """
    cleaned = _clean(text)
    forms = _forms(cleaned)
    if not any(forms):
        return _SAFE

    professional = _present(_PROFESSIONAL_MARKERS, forms)
    distressed = _present(_DISTRESS_MARKERS, forms)
    personal = _present(_PERSONAL_MARKERS, forms)
    third_party = _present(_THIRD_PARTY_MARKERS, forms)

    own = _concerns(_OWN_RULES, forms)
    implied = _concerns(_IMPLIED_RULES, forms)
    themes = _concerns(_THEME_RULES, forms) | _misspelt_themes(forms)
    mentioned = own | implied | themes | _concerns(_OTHERS_RULES, forms)
    if not mentioned:
        return _SAFE

    practitioner = professional and not distressed
    crisis = _concerns(_OWN_RULES, _forms(_QUOTED.sub(" ", cleaned))) if practitioner else own
    if not practitioner:
        if personal:
            crisis |= implied | themes
        else:
            # "han"/"she" usually names the perpetrator in a violence phrase, but the one who
            # suffers in a suicide or self-harm phrase.
            crisis |= {c for c in implied if c is _V or not third_party}
    level = Level.CRISIS if crisis else Level.TOPIC
    return SafetyAssessment(level, frozenset(mentioned))


# --------------------------------------------------------------------------------------------
# Helplines (numbers as given by the product owner; do not add or change without them)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Helpline:
    name: str
    number: str
    # Excluded from hashing so helplines can still live in sets and dict keys.
    purpose: dict[str, str] = field(hash=False)


_EMERGENCY = {
    "en": "Emergency number, if you or someone else is in danger right now.",
    "sv": "Nödnumret, om du eller någon annan är i fara just nu.",
    "da": "Alarmnummeret, hvis du eller en anden er i fare lige nu.",
}

HELPLINES: dict[str, tuple[Helpline, ...]] = {
    "SE": (
        Helpline("112", "112", _EMERGENCY),
        Helpline(
            "Mind Självmordslinjen",
            "90101",
            {
                "en": "For when you have thoughts of suicide, or worry about someone who does.",
                "sv": "När du har tankar på självmord, eller oroar dig för någon som har det.",
                "da": "Når du har tanker om selvmord, eller er bekymret for en, der har det.",
            },
        ),
        Helpline(
            "BRIS",
            "116 111",
            {
                "en": "For children and young people who need someone to talk to.",
                "sv": "För barn och unga som behöver någon att prata med.",
                "da": "For børn og unge, der har brug for en at tale med.",
            },
        ),
        Helpline(
            "1177",
            "1177",
            {
                "en": "Healthcare advice, also when you are not feeling well inside.",
                "sv": "Råd om vård, också när du inte mår bra inuti.",
                "da": "Råd om sundhed og behandling, også når du ikke har det godt indeni.",
            },
        ),
    ),
    "DK": (
        Helpline("112", "112", _EMERGENCY),
        Helpline(
            "Livslinien",
            "70 201 201",
            {
                "en": "For when you have thoughts of suicide and need someone to talk to.",
                "sv": "När du har tankar på självmord och behöver någon att prata med.",
                "da": "Når du har tanker om selvmord og har brug for en at tale med.",
            },
        ),
        Helpline(
            "Børnetelefonen",
            "116 111",
            {
                "en": "For children and young people who need someone to talk to.",
                "sv": "För barn och unga som behöver någon att prata med.",
                "da": "For børn og unge, der har brug for en at tale med.",
            },
        ),
    ),
}

_COUNTRIES_BY_LANGUAGE = {"sv": ("SE",), "da": ("DK",)}


def helplines_for(language: str) -> dict[str, tuple[Helpline, ...]]:
    """Pick the countries whose helplines a user of this language can most likely call.

    English speakers may be in either country, so they get both. A fresh dict is returned so
    a caller that reorders or trims it cannot change what the next user sees.
    """
    primary = language.strip().casefold().replace("_", "-").split("-")[0]
    countries = _COUNTRIES_BY_LANGUAGE.get(primary, ("SE", "DK"))
    return {country: HELPLINES[country] for country in countries}
