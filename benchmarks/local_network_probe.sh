#!/usr/bin/env bash
# Can another address reach a local distributed job's Reverb server? (#25; needs root
# for `ip netns`.)  Starts a tiny local job with ScaleOut.private_network = $1
# (True: the default; False: the host network), shows `ss` on the host network (and
# inside the job's namespace), then connects from 10.77.0.2, the address of a probe
# network namespace joined to the host by a veth pair, to the host side 10.77.0.1.
#     sudo bash benchmarks/local_network_probe.sh True
set -u
PRIVATE=$1
cd "$(dirname "$0")/.."; mkdir -p ${PROBE_DIR:-/tmp/spotisim_probe}
PY=${PYTHON:-.venv/bin/python}
W=${PROBE_DIR:-/tmp/spotisim_probe}/world
[ -d $W ] || $PY -m spotisim.data.synthetic --out $W --sessions 300 --tracks 300 --listeners 60 >/dev/null
ROOT=${PROBE_DIR:-/tmp/spotisim_probe}/job_$PRIVATE; rm -rf $ROOT
$PY -m experiments.distributed --role=local --gin_file=ah_dqn --root_dir=$ROOT \
  --gin_bindings="load_dataset.log_path='$W/log'" --gin_bindings="load_dataset.tracks_path='$W/tracks/tracks.csv'" \
  --gin_bindings="fit_or_load_user_model.model_ctor=@LogisticUserModel" --gin_bindings="LogisticUserModel.epochs=2" \
  --gin_bindings="train/EnvironmentBuilder.batch_size=4" --gin_bindings="LogEpisodeSampler.pool_size=30" \
  --gin_bindings="run_experiment.num_iterations=1000000" --gin_bindings="run_experiment.baselines=['random']" \
  --gin_bindings="ScaleOut.min_replay_size=40" --gin_bindings="ScaleOut.rows_per_shard=None" \
  --gin_bindings="fit_or_load_user_model.cache_dir='${PROBE_DIR:-/tmp/spotisim_probe}/cache'" \
  --gin_bindings="ScaleOut.private_network=$PRIVATE" > ${PROBE_DIR:-/tmp/spotisim_probe}/launcher_$PRIVATE.log 2>&1 &
JOB=$!
for i in $(seq 1 120); do grep -q "listening" $ROOT/logs/replay.log 2>/dev/null && break; sleep 1; done
grep "listening" $ROOT/logs/replay.log
PORT=$(grep -o '\]:[0-9]*' $ROOT/logs/replay.log | head -1 | tr -d ']:')
echo "port $PORT"
echo "--- ss -ltnp on the host's network, port $PORT:"
ss -ltnp | grep ":$PORT " || echo "(nothing listens on $PORT here)"
REPLAY_PID=$(pgrep -f -- "--role=replay" | head -1)
if [ "$PRIVATE" = "True" ]; then
  echo "--- ss -ltn inside the job's namespace (nsenter into the replay server's):"
  nsenter --target $REPLAY_PID --net --user --preserve-credentials ss -ltn | grep ":$PORT " || true
fi
ip netns add probe 2>/dev/null
ip link add vh0 type veth peer name vp0
ip link set vp0 netns probe
ip addr add 10.77.0.1/24 dev vh0; ip link set vh0 up
ip netns exec probe ip addr add 10.77.0.2/24 dev vp0
ip netns exec probe ip link set vp0 up; ip netns exec probe ip link set lo up
echo "--- from 10.77.0.2 (the probe namespace) to 10.77.0.1:$PORT:"
ip netns exec probe python3 -c "
import socket
try:
    socket.create_connection(('10.77.0.1', $PORT), timeout=3); print('CONNECTED: reachable from another address')
except Exception as e:
    print('refused:', type(e).__name__, e)"
ip link del vh0; ip netns del probe
touch $ROOT/STOP; sleep 20; kill $JOB 2>/dev/null; pkill -f "$ROOT" 2>/dev/null; true
