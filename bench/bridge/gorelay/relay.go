package main

// One AudioSocket call: a reader goroutine (caller audio to the backend), a
// receiver goroutine (backend commands into the playout queue) and a
// playout goroutine (one 20 ms frame per ticker tick, silence when nothing
// is queued, marks resolved once the audio before them was written).

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"io"
	"log"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

const (
	kindHangup = 0x00
	kindUUID   = 0x01
	kindSlin8k = 0x10
	kindError  = 0xff
	rate       = 8000
	frameBytes = 320 // 20 ms of 8 kHz 16-bit mono
	frameDur   = 20 * time.Millisecond
	bytesPerMs = rate * 2 / 1000
)

// Process-wide counters, printed as JSON on SIGINT/SIGTERM.
var stats struct {
	calls, callsFailed, framesIn, framesOut, droppedIn, droppedOutMs       atomic.Uint64
	lateTicks, skippedFrames, silenceFrames                                atomic.Uint64
	marksPlayed, marksCleared, marksCallEnded, clears, unsupportedCommands atomic.Uint64
}

// item is either audio (pcm, of response resp) or a mark.
type item struct {
	pcm  []byte
	resp string
	mark string
}

type call struct {
	conn        net.Conn
	be          *backendCall
	maxQueued   int // bytes
	stop        chan struct{}
	hangup      atomic.Int32 // 0, or the endReason+1 the backend side asked for
	st          callStats    // framesIn/bytesIn/droppedInMs: reader; the rest: playout
	mu          sync.Mutex   // guards the fields below
	queue       []item
	queuedPCM   int
	played      map[string]int // bytes written per response account
	current     string         // response playing or last played
	seq, offset uint64         // reader only
}

func readMsg(r *bufio.Reader) (byte, []byte, error) {
	var h [3]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	payload := make([]byte, binary.BigEndian.Uint16(h[1:]))
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	return h[0], payload, nil
}

func formatUUID(b []byte) string {
	s := hex.EncodeToString(b)
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32]
}

func handleConn(conn net.Conn, be *backend, acceptTimeout time.Duration, maxPlayout time.Duration) {
	defer conn.Close()
	stats.calls.Add(1)
	br := bufio.NewReaderSize(conn, 4096)
	kind, payload, err := readMsg(br)
	if err != nil || kind != kindUUID || len(payload) != 16 {
		stats.callsFailed.Add(1)
		return
	}
	id := formatUUID(payload)
	bc, err := be.startCall(id, conn.RemoteAddr().String(), rate, acceptTimeout)
	if err != nil {
		log.Printf("call %s: %v", id, err)
		stats.callsFailed.Add(1)
		conn.Write([]byte{kindHangup, 0, 0})
		return
	}
	c := &call{conn: conn, be: bc, maxQueued: int(maxPlayout.Milliseconds()) * bytesPerMs,
		stop: make(chan struct{}), played: map[string]int{}}
	recvDone, playoutDone := make(chan struct{}), make(chan struct{})
	go func() { defer close(recvDone); c.recvLoop() }()
	go func() { defer close(playoutDone); c.playout() }()

	why := endCallerHungUp
read:
	for {
		kind, payload, err := readMsg(br)
		if err != nil {
			if h := c.hangup.Load(); h != 0 {
				why = endReason(h - 1)
			}
			break
		}
		switch kind {
		case kindSlin8k:
			c.st.framesIn++
			c.st.bytesIn += uint64(len(payload))
			stats.framesIn.Add(1)
			if !bc.sendAudio(payload, rate, c.seq, c.offset) {
				stats.droppedIn.Add(1)
				c.st.droppedInMs += uint64(len(payload) / bytesPerMs)
			}
			c.seq++
			c.offset += uint64(len(payload) / 2)
		case kindHangup, kindError:
			break read
		}
	}
	close(c.stop)
	<-playoutDone
	c.mu.Lock()
	var marks []string
	for _, it := range c.queue {
		if it.mark != "" {
			marks = append(marks, it.mark)
		}
	}
	c.queue = nil
	c.mu.Unlock()
	for _, m := range marks {
		stats.marksCallEnded.Add(1)
		bc.sendMark(m, markCallEnded)
	}
	bc.finish(why, c.st)
	select {
	case <-recvDone:
	case <-time.After(2 * time.Second):
	}
	bc.close()
}

func (c *call) recvLoop() {
	for {
		cmd, err := c.be.recv()
		if err != nil {
			c.hangup.CompareAndSwap(0, int32(endBackendLost)+1)
			return
		}
		switch cmd.kind {
		case cmdPlay:
			if (cmd.rate != 0 && cmd.rate != rate) || len(cmd.pcm)%2 != 0 {
				stats.unsupportedCommands.Add(1)
				c.be.sendUnsupported(cmd)
				continue
			}
			c.mu.Lock()
			if c.queuedPCM+len(cmd.pcm) > c.maxQueued {
				stats.droppedOutMs.Add(uint64(len(cmd.pcm) / bytesPerMs))
			} else {
				c.queue = append(c.queue, item{pcm: cmd.pcm, resp: cmd.responseID})
				c.queuedPCM += len(cmd.pcm)
			}
			c.mu.Unlock()
		case cmdMark:
			c.mu.Lock()
			c.queue = append(c.queue, item{mark: cmd.mark})
			c.mu.Unlock()
		case cmdClear:
			c.clear(cmd)
		case cmdHangup:
			c.hangup.CompareAndSwap(0, int32(endBackendHungUp)+1)
		default:
			stats.unsupportedCommands.Add(1)
			c.be.sendUnsupported(cmd)
		}
	}
}

// clear removes queued audio (all, or one response's) and, for a clear of
// everything, the queued marks; it reports each response touched.
func (c *call) clear(cmd command) {
	stats.clears.Add(1)
	c.mu.Lock()
	discarded := map[string]int{}
	var order, marks []string
	if _, ok := c.played[c.current]; ok && (cmd.responseID == "" || cmd.responseID == c.current) {
		order = append(order, c.current)
		discarded[c.current] = 0
	}
	kept := make([]item, 0, len(c.queue))
	for _, it := range c.queue {
		switch {
		case it.mark != "" && cmd.responseID == "":
			marks = append(marks, it.mark)
		case it.mark == "" && (cmd.responseID == "" || it.resp == cmd.responseID):
			if _, ok := discarded[it.resp]; !ok {
				order = append(order, it.resp)
			}
			discarded[it.resp] += len(it.pcm)
			c.queuedPCM -= len(it.pcm)
		default:
			kept = append(kept, it)
		}
	}
	c.queue = kept
	var accounts []responseAccount
	total := 0
	for _, id := range order {
		accounts = append(accounts, responseAccount{id: id, playedMs: uint32(c.played[id] / bytesPerMs),
			discardedMs: uint32(discarded[id] / bytesPerMs)})
		total += discarded[id]
		delete(c.played, id)
	}
	c.mu.Unlock()
	c.be.sendCleared(cmd.id, accounts, uint32(total/bytesPerMs))
	for _, m := range marks {
		stats.marksCleared.Add(1)
		c.be.sendMark(m, markCleared)
	}
}

// nextFrame fills frame from the queue (silence for what is missing) and
// returns the marks whose audio is now all taken.
func (c *call) nextFrame(frame []byte) []string {
	var marks []string
	n := 0
	c.mu.Lock()
	for len(c.queue) > 0 {
		it := &c.queue[0]
		if it.mark != "" {
			marks = append(marks, it.mark)
			c.queue = c.queue[1:]
			continue
		}
		if n == len(frame) {
			break
		}
		if it.resp != c.current {
			delete(c.played, c.current) // another response starts: the last one's account ends
			c.current = it.resp
		}
		k := copy(frame[n:], it.pcm)
		n += k
		c.played[it.resp] += k
		c.queuedPCM -= k
		if it.pcm = it.pcm[k:]; len(it.pcm) == 0 {
			c.queue = c.queue[1:]
		}
	}
	c.mu.Unlock()
	clear(frame[n:])
	if n == 0 {
		c.st.silenceFrames++
		stats.silenceFrames.Add(1)
	}
	return marks
}

func (c *call) playout() {
	t := time.NewTicker(frameDur)
	defer t.Stop()
	start := time.Now()
	next := int64(1) // the tick number due next
	msg := make([]byte, 3+frameBytes)
	msg[0] = kindSlin8k
	binary.BigEndian.PutUint16(msg[1:], frameBytes)
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		if c.hangup.Load() != 0 {
			c.conn.Write([]byte{kindHangup, 0, 0})
			c.conn.Close()
			return
		}
		// A tick more than a frame late: the ticker dropped the ticks in
		// between; count them and carry on from now (one frame per tick).
		if due := int64(time.Since(start) / frameDur); due > next {
			stats.lateTicks.Add(1)
			stats.skippedFrames.Add(uint64(due - next))
			next = due
		}
		next++
		marks := c.nextFrame(msg[3:])
		c.conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.conn.Write(msg); err != nil {
			c.conn.Close()
			return
		}
		c.st.framesOut++
		c.st.bytesOut += frameBytes
		stats.framesOut.Add(1)
		for _, m := range marks {
			stats.marksPlayed.Add(1)
			c.be.sendMark(m, markPlayed)
		}
	}
}
