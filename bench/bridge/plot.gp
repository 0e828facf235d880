# gnuplot -e "dir='RESULTS_DIR'; png='OUT.png'" bench/bridge/plot.gp
# Reads RESULTS_DIR/plot-<system>.dat (written by bridge_bench.py; medians
# over repeats); sys='...' picks the systems.
set terminal pngcairo size 1200,900 font ",10"
set output png
if (!exists("heading")) heading = "audiosocket-bridge vs. a plain Go relay and plain AudioSocket echo, 8 kHz calls, 2-core VM"
set multiplot layout 2,2 title heading
set key top left
set grid
set xlabel "concurrent calls"
if (!exists("sys")) sys = "baseline bridge-push bridge-pull gorelay-push"
n = words(sys)
f(s) = sprintf("%s/plot-%s.dat", dir, s)
set title "server CPU (% of one core)"
plot for [i=1:n] f(word(sys, i)) using 1:2 with linespoints lc i title word(sys, i)
set title "CPU per call (% of one core); goal 0.2 (push)"
plot for [i=1:n] f(word(sys, i)) using 1:3 with linespoints lc i title word(sys, i), 0.2 with lines dt 2 lc rgb "red" title "goal"
set title "RSS per call (KiB); goal 256"
plot for [i=1:n] f(word(sys, i)) using 1:4 with linespoints lc i title word(sys, i), 256 with lines dt 2 lc rgb "red" title "goal"
set title "p99 (ms, log): jitter at the emulator (j), emulator-to-backend latency (l)"
set logscale y
plot for [i=1:n] f(word(sys, i)) using 1:5 with linespoints lc i title word(sys, i)." j", \
     for [i=2:n] f(word(sys, i)) using 1:6 with linespoints lc i dt 3 pt 6 title word(sys, i)." l", \
     1 with lines dt 2 lc rgb "red" title "jitter goal 1 ms"
unset multiplot
