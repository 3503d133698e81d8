"""Load the trained Rasa model and print what it predicts, to compare two ways of loading it (run in Rasa's env).

    .venv-rasa/bin/python tests/rasa_load_probe.py MODEL [--fast]   →   one JSON line on stdout

With ``--fast`` the TensorFlow models load through bot/fastload.py, otherwise through Rasa's own
``RasaModel.load``. Output: {"load_seconds", "load_cpu_seconds", "nlu": [{text, intent ranking, entities}] for
every third NLU example (the same ones each time: a loader that gets any weight wrong moves nearly
every ranking, and parsing all 1,141 took most of the check's three minutes) and every test-story
message, "core": [[action, policy, confidence] per step] for every story of bot/data/stories.yml and
bot/tests/test_stories.yml, the story's own user and action events fed in turn}. Used by tests/test_fastload.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
logging.basicConfig(level=logging.ERROR)
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


NLU_STRIDE = 3  # every third NLU example


def story_files() -> list[Path]:
    return [ROOT / "bot" / "data" / "stories.yml", ROOT / "bot" / "tests" / "test_stories.yml"]


def rounded(x: float) -> float:
    return round(float(x), 5)


async def probe(model: str) -> dict:
    from rasa.core.agent import Agent
    from rasa.shared.core.events import ActionExecuted, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader
    from rasa.shared.nlu.training_data.loading import load_data

    started, cpu = time.perf_counter(), time.process_time()
    agent = Agent.load(model)
    load_seconds, load_cpu = time.perf_counter() - started, time.process_time() - cpu
    texts = [m.get("text") for m in load_data(str(ROOT / "bot" / "data" / "nlu.yml")).intent_examples][::NLU_STRIDE]
    nlu = []

    async def parse(text: str) -> dict:
        result = await agent.parse_message(text)
        nlu.append({"text": text,
                    "ranking": [[r["name"], rounded(r["confidence"])] for r in result.get("intent_ranking", [])],
                    "entities": [[e["entity"], e["value"], e["start"], e["end"]] for e in result.get("entities", [])]})
        return result

    for text in texts:
        await parse(text)
    core = []
    reader = YAMLStoryReader(agent.domain)
    for path in story_files():
        for step in reader.read_from_file(path):
            tracker = DialogueStateTracker.from_events(step.block_name, [ActionExecuted("action_listen")],
                                                       agent.domain.slots)
            predictions = []
            for event in step.events:
                if isinstance(event, UserUttered) and event.text:
                    data = await parse(event.text)
                    event = UserUttered(event.text, data["intent"], data["entities"], data)
                if isinstance(event, ActionExecuted) and event.action_name != "action_listen":
                    p = agent.processor._predict_next_with_tracker(tracker)  # noqa: SLF001
                    predictions.append([agent.domain.action_names_or_texts[p.max_confidence_index],
                                        p.policy_name, rounded(p.max_confidence)])
                tracker.update(event, agent.domain)
            core.append(predictions)
    return {"load_seconds": round(load_seconds, 1), "load_cpu_seconds": round(load_cpu, 1), "nlu": nlu, "core": core}


def main() -> None:
    model, fast = sys.argv[1], "--fast" in sys.argv[2:]
    if fast:
        from bot import fastload

        fastload.install()
    print(json.dumps(asyncio.run(probe(model)), ensure_ascii=False))


if __name__ == "__main__":
    main()
