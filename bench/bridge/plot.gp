# gnuplot -e "dir='RESULTS_DIR'; png='OUT.png'" bench/bridge/plot.gp
# Reads RESULTS_DIR/plot-<system>-<workload>.dat (written by bridge_bench.py;
# medians over repeats). sys='...' picks the systems, wl='...' the workloads
# (solid lines the first, dashed the second); the ratio panels take the
# first system for the baseline and the last for the Go relay. Dashed red
# lines are the goals.
set terminal pngcairo size 1500,1200 font ",10" noenhanced
set output png
if (!exists("heading")) heading = "audiosocket-bridge vs. a plain Go relay and a plain AudioSocket echo (baseline), 8 kHz calls, medians over repeats; solid: echo, dashed: voice agent"
if (!exists("sys")) sys = "baseline bridge-push bridge-pull gorelay-push"
if (!exists("wl")) wl = "echo voice_agent"
set multiplot layout 3,3 title heading
set key top left font ",8"
set grid
set xlabel "concurrent calls"
ns = words(sys)
nw = words(wl)
f(s, w) = sprintf("%s/plot-%s-%s.dat", dir, s, w)
t(s, w) = sprintf("%s %s", s, w)
set title "CPU per call (% of one core)"
plot for [j=1:nw] for [i=1:ns] f(word(sys, i), word(wl, j)) using 1:3 with linespoints lc i dt j title t(word(sys, i), word(wl, j))
set title "CPU per call / the baseline's; goal 1.5"
plot for [j=1:nw] for [i=2:ns] f(word(sys, i), word(wl, j)) using 1:4 with linespoints lc i dt j title t(word(sys, i), word(wl, j)), \
     1.5 with lines dt 2 lc rgb "red" title "goal"
set title "CPU per call / the Go relay's; goal 0.5"
plot for [j=1:nw] for [i=2:ns-1] f(word(sys, i), word(wl, j)) using 1:5 with linespoints lc i dt j title t(word(sys, i), word(wl, j)), \
     0.5 with lines dt 2 lc rgb "red" title "goal"
set title "RSS per call (KiB); goal 64"
plot for [j=1:nw] for [i=1:ns] f(word(sys, i), word(wl, j)) using 1:6 with linespoints lc i dt j title t(word(sys, i), word(wl, j)), \
     64 with lines dt 2 lc rgb "red" title "goal"
set title "caller-side jitter p99 (ms), as the emulator read it; goal 1"
set logscale y
plot for [j=1:nw] for [i=1:ns] f(word(sys, i), word(wl, j)) using 1:7 with linespoints lc i dt j title t(word(sys, i), word(wl, j)), \
     1 with lines dt 2 lc rgb "red" title "goal"
set title "caller-side jitter p99 (ms), by the kernel's arrival times"
plot for [j=1:nw] for [i=1:ns] f(word(sys, i), word(wl, j)) using 1:8 with linespoints lc i dt j title t(word(sys, i), word(wl, j)), \
     1 with lines dt 2 lc rgb "red" title "goal"
set title "emulator-to-backend latency p99 (ms); goal 2"
plot for [j=1:nw] for [i=2:ns] f(word(sys, i), word(wl, j)) using 1:9 with linespoints lc i dt j title t(word(sys, i), word(wl, j)), \
     2 with lines dt 2 lc rgb "red" title "goal"
unset logscale y
unset multiplot
