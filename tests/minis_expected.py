"""Each miniature benchmark's metric computed by hand from the documents and the model's answers.

The rules are those the ``tests/evaluation/test_minis_*.py`` tables spell out (and lmms-eval 0.7.3's task code
applies), written out here without calling lmms-eval: ``hand_scores(key, docs, answers)`` gives
``{metric: value}`` for a benchmark key of ``evaluation.minis.MINIS``, ``answers[i]`` being the raw text the
model generated for ``docs[i]``. The minis tests check these functions against their hand tables;
``tests/integration/test_minis_worker.py`` applies them to a real model's answers and compares with what a
real worker stored.

MMMU's multiple-choice parser picks a *random* letter when a response names none; that pick is not a rule
anyone can apply by hand, so ``hand_scores("mmmu", ...)`` takes it from ``random_letters`` ({doc id: letter})
and refuses a response that needs one it was not given. Likewise the LLM judges: ``hand_scores("mmbench", ...)``
takes the letters the judge returned (``judge_letters``, {index: letter}) for predictions no rule reads (or,
``rule_based=True``, applies ``mmbench_en_dev_static``'s extraction instead), ``hand_scores("mathvista", ...)``
the judge's extractions (``judge_extractions``, {pid: text}) for responses the task does not parse itself.
"""

import contextlib
import math
import re
import string
from collections import defaultdict

# MME's categories (the mini draws from both groups).
MME_PERCEPTION = {"existence", "count", "position", "color", "posters", "celebrity", "scene", "landmark", "artwork",
                  "OCR"}
# VQA answer normalisation: punctuation dropped, number words as digits, articles dropped, a few contractions.
_NUMBER_WORDS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
                 "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_ARTICLES = {"a", "an", "the"}
_CONTRACTIONS = {"dont": "don't", "doesnt": "doesn't", "isnt": "isn't", "arent": "aren't", "cant": "can't",
                 "wont": "won't", "im": "i'm", "ive": "i've", "its": "it's", "thats": "that's"}
_VQA_PUNCTUATION = ";/[]\"{}()=+\\_-><@`,?!"


def vqa_accuracy(matches: int, annotators: int = 10) -> float:
    """VQA accuracy by hand: over the ten leave-one-out subsets of nine answers, min(#equal answers / 3, 1),
    averaged. An annotator who gave the predicted answer leaves matches - 1 equal answers, any other leaves
    matches."""
    return (matches * min(1, (matches - 1) / 3) + (annotators - matches) * min(1, matches / 3)) / annotators


def vqa_normalise(text: str) -> str:
    """Lower case; a comma between digits and punctuation next to a space vanish, other punctuation becomes a
    space; a period not before a digit vanishes; number words become digits; articles go."""
    text = text.replace("\n", " ").replace("\t", " ").strip()
    for mark in _VQA_PUNCTUATION:
        glued = (mark + " " in text or " " + mark in text) or re.search(r"(\d)(,)(\d)", text)
        text = text.replace(mark, "" if glued else " ")
    text = re.sub(r"(?<!\d)\.(?!\d)", "", text)
    words = [_NUMBER_WORDS.get(word, word) for word in text.lower().split()]
    return " ".join(_CONTRACTIONS.get(word, word) for word in words if word not in _ARTICLES)


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


def _plain(text: str) -> str:
    """Lower case, no punctuation: how lmms-eval's exact_match (ignore_case, ignore_punctuation) compares."""
    return text.lower().translate(str.maketrans("", "", string.punctuation))


def pope(docs, answers) -> dict:
    predictions = [answer.strip().lower() for answer in answers]
    truths = [doc["answer"].strip().lower() for doc in docs]
    pairs = list(zip(truths, predictions))
    true_pos = pairs.count(("yes", "yes"))
    false_pos = pairs.count(("no", "yes"))
    false_neg = pairs.count(("yes", "no"))
    precision = true_pos / (true_pos + false_pos) if true_pos + false_pos else 0
    recall = true_pos / (true_pos + false_neg) if true_pos + false_neg else 0
    return {
        "pope_accuracy": _mean(truth == prediction for truth, prediction in pairs),
        "pope_precision": precision,
        "pope_recall": recall,
        "pope_f1_score": 2 * precision * recall / (precision + recall) if precision + recall else 0,
        "pope_yes_ratio": truths.count("yes") / len(truths),
    }


def scienceqa_img(docs, answers) -> dict:
    def correct(doc, answer):
        letter, prediction = "ABCDE"[doc["answer"]].lower(), answer.strip()
        if prediction.lower() == letter:
            return True
        starts_with_letter = len(prediction) >= 2 and prediction[0].isupper() and prediction[1] == "."
        return starts_with_letter and prediction[0].lower() == letter

    return {"exact_match": _mean(correct(doc, answer) for doc, answer in zip(docs, answers))}


def ai2d(docs, answers) -> dict:
    def prediction(answer):
        letter = re.match(r"\s*([A-Z])\.", answer)  # "X. ..." counts as X
        return letter.group(1) if letter else answer.strip()

    return {"exact_match": _mean(_plain(prediction(answer)) == _plain("ABCD"[int(doc["answer"])])
                                 for doc, answer in zip(docs, answers))}


def gqa(docs, answers) -> dict:
    return {"exact_match": _mean(_plain(answer.strip()) == _plain(doc["answer"]) for doc, answer in zip(docs, answers))}


def _relaxed(prediction: str, target: str) -> bool:
    def number(text):
        try:
            return float(text[:-1]) / 100 if text.endswith("%") else float(text)
        except ValueError:
            return None

    predicted, wanted = number(prediction), number(target)
    if predicted is not None and wanted:
        return abs(predicted - wanted) / abs(wanted) <= 0.05
    return prediction.lower() == target.lower()


def chartqa(docs, answers) -> dict:
    scores = defaultdict(list)
    for doc, answer in zip(docs, answers):
        score = 1.0 if _relaxed(answer.strip(), doc["answer"]) else 0.0
        scores["relaxed_overall"].append(score)
        scores["relaxed_human_split" if doc["type"] == "human_test" else "relaxed_augmented_split"].append(score)
    return {metric: _mean(values) for metric, values in scores.items()}


def _vqa(docs, answers, answer_texts) -> dict:
    def accuracy(doc, answer):
        truths = answer_texts(doc)
        if not truths:
            return 0.0
        prediction = vqa_normalise(answer)
        return vqa_accuracy([vqa_normalise(truth) for truth in truths].count(prediction), len(truths))

    return {"exact_match": _mean(accuracy(doc, answer) for doc, answer in zip(docs, answers))}


def textvqa(docs, answers) -> dict:
    return _vqa(docs, answers, lambda doc: doc["answers"])


def vizwiz(docs, answers) -> dict:
    return _vqa(docs, answers, lambda doc: doc["answers"])


def vqav2(docs, answers) -> dict:
    return _vqa(docs, answers, lambda doc: [item["answer"] for item in doc["answers"] or []])


def _edit_distance(first: str, second: str) -> int:
    previous = list(range(len(second) + 1))
    for i, a in enumerate(first, 1):
        current = [i]
        for j, b in enumerate(second, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a != b)))
        previous = current
    return previous[-1]


def docvqa(docs, answers) -> dict:
    """ANLS: 1 - edit distance / longer length against the closest answer (lower case, spaces collapsed; the
    length is the raw strings'), 0 below 0.5."""

    def anls(doc, answer):
        prediction = answer.strip()
        squeezed = " ".join(prediction.lower().split())
        distances = []
        for truth in doc["answers"]:
            length = max(len(truth), len(prediction))
            distances.append(0.0 if length == 0 else _edit_distance(" ".join(truth.lower().split()), squeezed) / length)
        score = 1 - min(distances)
        return 0 if score < 0.5 else score

    return {"anls": _mean(anls(doc, answer) for doc, answer in zip(docs, answers))}


def _yes_no(answer: str) -> str:
    text = answer.strip().lower().strip().replace(".", "")
    if text in ("yes", "no"):
        return text
    if len(text) == 1:
        return {"y": "yes", "n": "no"}.get(text, "other")
    return "yes" if "yes" in text[:4] else "no" if "no" in text[:4] else "other"


def mme(docs, answers) -> dict:
    """Per image: accuracy over its two questions (in %) + 100 when both are right; per category the mean over
    its images; perception and cognition the sums over their categories."""
    right = defaultdict(lambda: defaultdict(list))
    for doc, answer in zip(docs, answers):
        truth = doc["answer"].lower().strip().replace(".", "")
        right[doc["category"]][doc["question_id"]].append(_yes_no(answer) == truth)
    scores = {"mme_perception_score": 0.0, "mme_cognition_score": 0.0}
    for category, images in right.items():
        assert all(len(pair) == 2 for pair in images.values()), category
        per_image = [100 * sum(pair) / 2 + (100 if all(pair) else 0) for pair in images.values()]
        key = "mme_perception_score" if category in MME_PERCEPTION else "mme_cognition_score"
        scores[key] += _mean(per_image)
    return {key: value for key, value in scores.items() if any(
        (category in MME_PERCEPTION) == (key == "mme_perception_score") for category in right)}


def _mmmu_letter(response: str, options: list[str]) -> str | None:
    """The letter a multiple-choice response names: "(X)", else "X " or "X.", else (a response of more than five
    words) the option text it contains; the last one named when several are. None: no letter named."""
    letters = [chr(ord("A") + index) for index in range(len(options))]
    text = " " + response.strip(",.!?;:'") + " "
    for pattern in ("({})", "{} ", "{}."):
        named = [letter for letter in letters if pattern.format(letter) in text]
        if named:
            where = "({})" if pattern == "({})" else " {} "
            return max(named, key=lambda letter: text.rfind(where.format(letter))) if len(named) > 1 else named[0]
    if len(text.split()) > 5:
        named = [letter for letter, option in zip(letters, options) if option.lower() in text.lower()]
        if named:
            return max(named, key=lambda letter: text.lower().rfind(options[letters.index(letter)].lower()))
    return None


def _mmmu_open_correct(response: str, answer: str) -> bool:
    """The tail after the last-placed key phrase ("is ", "answer ", "so ", ...) or the whole response, and the
    numbers in it; numbers compared rounded to 2 decimals, words by substring."""

    def normalised(text):
        text = text.strip()
        try:
            return [round(float(text.replace(",", "")), 2)]
        except ValueError:
            text = text.lower()
            return [" " + text, text + " "] if len(text) == 1 else [text]

    keys = ["could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result "]
    parts = re.split(r"\.\s(?=[A-Z])|\n", response.strip().strip(".").lower())
    tails = []
    for index, part in enumerate(parts):
        part_keys = keys + (["="] if index == len(parts) - 1 else [])  # the last part may be an equation
        found = [part.split(key)[-1].strip() for key in part_keys if key in part]
        shortest = min(found, key=len) if found else None
        if shortest and shortest.strip() not in tuple(":,.!?;'"):
            tails.append(shortest)
    tails = tails or [response.strip().strip(".").lower()]
    numbers = [number for tail in tails for number in re.findall(r"-?(?:\d+\.\d+|\.\d+|\d+)", tail)]
    predictions = {value for text in tails + numbers for value in normalised(text)}
    truths = normalised(answer)
    return any(
        (isinstance(prediction, str) and any(isinstance(truth, str) and truth in prediction for truth in truths))
        or (not isinstance(prediction, str) and prediction in truths)
        for prediction in predictions
    )


def mmmu(docs, answers, random_letters: dict | None = None) -> dict:
    import ast

    def correct(doc, answer):
        if doc["question_type"] != "multiple-choice":
            return _mmmu_open_correct(answer, doc["answer"])
        letter = _mmmu_letter(answer, ast.literal_eval(doc["options"]))
        if letter is None:
            if random_letters is None or doc["id"] not in random_letters:
                raise LookupError(f"{doc['id']}: the response names no letter, lmms-eval picks one at random")
            letter = random_letters[doc["id"]]
        return letter == doc["answer"]

    return {"mmmu_acc": _mean(correct(doc, answer) for doc, answer in zip(docs, answers))}


_CIRCULAR = 1_000_000  # MMBench: a circular copy's index is its original's + k * 1_000_000
# MMBench's rule reading: a letter X wrapped so, one whole word of the prediction (tried in this order).
_WRAPPINGS = tuple(form.split("X") for form in "X. X, X: X) X). (X) (X). :X :X, :X. :X) :X).".split())
# mmbench_en_dev_static's extraction: the phrases after which any option letter counts.
_CORES = ("answer", "correct answer", "best answer", "correct option", "best option", "choice", "correct choice")
_PHRASES = (*(f"{the}{core} is" for core in _CORES for the in ("the ", "")), "i choose", "i select", "i pick",
            "my answer is", "my choice is", "옵션", "정답은", "답은", "답:", "答案是", "答案为", "选", "答えは")


def _mmbench_rule_letter(prediction: str, options: dict) -> str | None:
    """The letter MMBench reads without any judge: the one bare letter A-E among the words (unless "A" is one of
    more than three words: maybe an article), else, wrapping by wrapping ("B.", "B,", ... "(B)", ":B" ...), the one
    letter so wrapped; else the one option whose text (lower case) the prediction contains. None: no rule reads it."""
    words = prediction.split()
    bare = [letter for letter in "ABCDE" if letter in words]
    if len(bare) == 1 and not ("A" in words and len(words) > 3):
        return bare[0]
    for before, after in _WRAPPINGS:
        wrapped = [letter for letter in "ABCDE" if before + letter + after in words]
        if len(wrapped) == 1:
            return wrapped[0]
    named = [letter for letter, text in options.items() if str(text).lower() in prediction.lower()]
    return named[0] if len(named) == 1 else None


def _static_letter(response: str, letters: list[str]) -> str:
    """mmbench_en_dev_static's reading of a prediction no rule above reads. Each letter is a candidate in every
    form it takes: the response starting (priority 10) or ending (9) with it, after an answer phrase anywhere
    (7), "(X)" (6), "X." (5), "X:" (4), "X)" (3), "X " (2); with none of those, any capital X at all (0). The
    highest priority wins, then the latest position. "" when no letter occurs."""
    text = response.strip()
    for mark in ",.!?;:'\"":
        text = text.strip(mark)
    padded, stripped = f" {text} ", text.strip()
    found = []  # (priority, position, letter)
    for priority, form in ((6, "({})"), (5, "{}."), (4, "{}:"), (3, "{})"), (2, "{} ")):
        found += [(priority, padded.rfind(form.format(x)), x) for x in letters if form.format(x) in padded]
    for start in (padded.lower().find(phrase) + len(phrase) for phrase in _PHRASES if phrase in padded.lower()):
        found += [(7, padded.find(x, start), x) for x in letters if padded.find(x, start) != -1]  # 1st X after
    found += [(10, 0, x) for x in letters if stripped.startswith(x) and not stripped[1:2].isalpha()]
    found += [(9, len(padded) - 1, x) for x in letters if stripped.endswith(x) and not stripped[-2:-1].isalpha()]
    found = found or [(0, padded.rfind(x), x) for x in letters if x in padded]
    return max(found)[2] if found else ""


def mmbench(docs, answers, judge_letters: dict | None = None, rule_based: bool = False) -> dict:
    """Circular evaluation: an original question (index < 1e6) is right only when it and every copy of it
    (index % 1e6 equal) are. In a group, first the predictions a rule reads (``_mmbench_rule_letter``): one wrong
    loses the group at once; then the others in index order, each read by the judge (``judge_letters``) or,
    ``rule_based``, by ``_static_letter`` (none: wrong), stopping at the first wrong. Percent of originals right."""
    rows = sorted(zip(docs, (answer.strip() for answer in answers)), key=lambda row: row[0]["index"])
    originals = [doc["index"] for doc, _ in rows if doc["index"] < _CIRCULAR]
    hits = 0
    for original in originals:
        group = [(doc, text, {x: doc[x] for x in "ABCD" if doc[x] is not None}) for doc, text in rows
                 if doc["index"] % _CIRCULAR == original]
        read = [_mmbench_rule_letter(text, options) for _, text, options in group]
        hit = all(letter in (None, doc["answer"]) for letter, (doc, _, _) in zip(read, group))
        for doc, text, options in [row for row, letter in zip(group, read) if letter is None] if hit else []:
            judged = (judge_letters or {}).get(doc["index"])
            if not rule_based and judged not in tuple("ABCDE"):
                raise LookupError(f"MMBench {doc['index']}: no rule reads {text!r}, lmms-eval asks the judge; give "
                                  "its letter (A-E) in judge_letters")
            hit = (_static_letter(text, sorted(options)) if rule_based else judged) == doc["answer"]
            if not hit:
                break
        hits += hit
    return {"gpt_eval_score": 100 * hits / len(originals)}


def _mathvista_extraction(doc, response: str, judge_extractions: dict | None) -> str:
    """The answer MathVista takes from a response: "" for none; the response itself when it is one of the
    choices' texts, or parses as the integer / float the question asks; otherwise the judge's extraction."""
    if not response or (doc["question_type"] == "multi_choice" and response in doc["choices"]):
        return response
    parse = {"integer": int, "float": float}.get(doc["answer_type"])
    with contextlib.suppress(TypeError, ValueError):
        return str(parse(response))  # no parse (None): TypeError
    if not (judge_extractions or {}).get(doc["pid"], "").strip():
        raise LookupError(f"MathVista {doc['pid']}: the task asks the judge to extract the answer of {response!r}; "
                          "give its (non-empty) reply in judge_extractions")
    return judge_extractions[doc["pid"]].strip()


def _mathvista_normalised(doc, extraction: str) -> str | None:
    """Multiple choice: a letter ("B" or "(B) ...") names its choice, any other text the choice closest by edit
    distance (the first of equals). Integers: int(float(text)). Floats: rounded to ``precision`` digits, which
    the dataset stores as a float (1.0) and Python's round() refuses: None, wrong, always. Lists: the text."""
    if doc["question_type"] == "multi_choice":
        text, choices = extraction.strip(), doc["choices"]
        letters = re.findall(r"\(([a-zA-Z])\)", text)
        text = letters[0].upper() if letters else text
        if text in [chr(ord("A") + position) for position in range(len(choices))]:
            return choices[ord(text) - ord("A")]
        distances = [_edit_distance(text, choice) for choice in choices]
        return choices[distances.index(min(distances))]
    if doc["answer_type"] not in ("integer", "float"):
        return extraction
    try:  # the dataset's precision is a float (1.0): round(value, 1.0) raises TypeError, the task says None
        value = float(extraction)
        return str(int(value)) if doc["answer_type"] == "integer" else str(round(value, doc["precision"]))
    except (TypeError, ValueError, OverflowError):
        return None


def mathvista(docs, answers, judge_extractions: dict | None = None) -> dict:
    """Percent of responses whose normalised answer equals ``answer`` as text, rounded to 2 decimals. lmms-eval
    reports None instead of 0 (Frontier records 0, evaluation.results.NONE_MEANS_ZERO)."""
    right = [str(_mathvista_normalised(doc, _mathvista_extraction(doc, answer.strip(), judge_extractions))).strip()
             == str(doc["answer"]).strip() for doc, answer in zip(docs, answers)]
    return {"llm_as_judge_eval": round(sum(right) / len(right) * 100, 2)}


HAND_SCORERS = {
    "pope": pope, "scienceqa_img": scienceqa_img, "chartqa": chartqa, "textvqa": textvqa, "docvqa": docvqa,
    "ai2d": ai2d, "gqa": gqa, "mme": mme, "vizwiz": vizwiz, "vqav2": vqav2, "mmmu": mmmu, "mmbench": mmbench,
    "mathvista": mathvista,
}


def hand_scores(key: str, docs, answers, **options) -> dict[str, float]:
    docs, answers = list(docs), list(answers)
    assert len(docs) == len(answers) and docs, (key, len(docs), len(answers))
    scores = HAND_SCORERS[key](docs, answers, **options)
    assert all(isinstance(value, (int, float)) and math.isfinite(value) for value in scores.values()), scores
    return scores
