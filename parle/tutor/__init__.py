"""The tutor: its prompts (`prompts`), the learner's level (`levels`: estimators, smoothing,
what each level steers; `mdeberta`: the CEFR classifier), the correction side channel
(`corrections`), and the per-turn policy both the server and the LiveKit agent follow
(`policy`)."""
