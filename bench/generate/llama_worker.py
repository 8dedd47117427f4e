"""llama-cpp-python side of bench/generate (runs in its own venv; never imported by prmkit).

Reads one JSON job from argv[1]: {"gguf", "prompt_ids", "n", "max_new_tokens", "temperature",
"seed", "threads", "eos_id"}; prints {"seconds", "completion_tokens"} as JSON. Model loading is
not timed. Each rollout is one ``create_completion`` call on the same 200-token prompt, as a CPU
user would write it; llama-cpp-python reuses the KV cache of the longest common prompt prefix, so
the prefix is evaluated once. EOS is banned with a logit bias so every rollout has the full length.
"""

from __future__ import annotations

import json
import sys
import time

from llama_cpp import Llama


def main() -> None:
    job = json.loads(sys.argv[1])
    llm = Llama(
        model_path=job["gguf"],
        n_ctx=1024,
        n_threads=job["threads"],
        n_threads_batch=job["threads"],
        n_batch=512,
        seed=job["seed"],
        verbose=False,
        logits_all=False,
    )
    tokens = 0
    start = time.perf_counter()
    for j in range(job["n"]):
        out = llm.create_completion(
            prompt=job["prompt_ids"],
            max_tokens=job["max_new_tokens"],
            temperature=job["temperature"],
            top_p=1.0,
            top_k=0,
            min_p=0.0,
            repeat_penalty=1.0,
            seed=job["seed"] + j,
            logit_bias={job["eos_id"]: -1e9},
        )
        tokens += out["usage"]["completion_tokens"]
    print(json.dumps({"seconds": time.perf_counter() - start, "completion_tokens": tokens}))


if __name__ == "__main__":
    main()
