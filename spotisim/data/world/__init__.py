"""The synthetic listening world's parts, one job each (see `spotisim.data.synthetic`,
which puts them together as `SyntheticWorld`):

- `config`: `WorldConfig`, every knob of the world;
- `catalogue`: tracks, their genres, latents, popularity and MSSD track features;
- `listeners`: listeners' tastes, pickiness and premium status, and session starts;
- `response`: the hidden response model (P(listen), state dynamics, P(leave)): what the
  ground-truth user model answers with;
- `logging_policy`: the policy that played the logged sessions;
- `exploration`: the random-exposure slice's policy (an opt-in second log);
- `writer`: logged sessions as MSSD rows and files.
"""
