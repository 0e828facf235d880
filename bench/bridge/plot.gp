# gnuplot -e "dir='RESULTS_DIR'; png='OUT.png'" bench/bridge/plot.gp
# Reads RESULTS_DIR/plot-<system>.dat (written by bridge_bench.py).
set terminal pngcairo size 1200,900 font ",10"
set output png
set multiplot layout 2,2 title "audiosocket-bridge vs. plain AudioSocket echo, 8 kHz calls, 2-core VM (shared)"
set key top left
set grid
set xlabel "concurrent calls"
sys = "baseline bridge-push bridge-pull"
f(s) = sprintf("%s/plot-%s.dat", dir, s)
set title "server CPU (% of one core)"
plot for [s in sys] f(s) using 1:2 with linespoints title s
set title "CPU per call (% of one core); goal 0.2 (push)"
plot for [s in sys] f(s) using 1:3 with linespoints title s, 0.2 with lines dt 2 lc rgb "red" title "goal"
set title "RSS per call (KiB); goal 256"
plot for [s in sys] f(s) using 1:4 with linespoints title s, 256 with lines dt 2 lc rgb "red" title "goal"
set title "p99 (ms): jitter at the emulator (j), emulator-to-backend latency (l)"
set logscale y
plot for [s in sys] f(s) using 1:5 with linespoints title s." j", \
     for [s in "bridge-push bridge-pull"] f(s) using 1:6 with linespoints dt 3 title s." l", \
     1 with lines dt 2 lc rgb "red" title "jitter goal 1 ms"
unset multiplot
