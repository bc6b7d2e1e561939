package main

// The load generator's client and the upstream speak HTTP/1.1 straight on their sockets, the
// way wrk and similar tools do: requests are built once, responses are read without building
// header maps, and neither allocates per request. Both share the machine's two cores with the
// gateways they measure, so every microsecond they spend on a header is charged to the
// gateway that sent it; net/http's client and server cost several times more per header and
// made the contract's nine headers look dearer than they are in the gateway itself.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// maxLine bounds a status or header line; longer ones are an error, not a reason to grow a
// buffer.
const maxLine = 8 << 10

var (
	errLineTooLong = errors.New("header line too long")
	errMalformed   = errors.New("malformed HTTP/1.1 message")
)

// buildRequest is one GET as the load sends it: to the tenant's subdomain, with its token.
func buildRequest(path, host, token string) []byte {
	var b bytes.Buffer
	b.WriteString("GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: saasbench\r\n")
	if token != "" {
		b.WriteString("Authorization: Bearer " + token + "\r\n")
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// wireConn is one keep-alive connection of the load. It dials on first use and again after
// any error or a response that closes the connection.
type wireConn struct {
	addr string
	c    net.Conn
	r    *bufio.Reader
}

func (w *wireConn) roundTrip(req []byte) (status int, err error) {
	if w.c == nil {
		c, err := net.Dial("tcp", w.addr)
		if err != nil {
			return 0, err
		}
		w.c = c
		if w.r == nil {
			w.r = bufio.NewReaderSize(c, maxLine)
		} else {
			w.r.Reset(c)
		}
	}
	if _, err := w.c.Write(req); err != nil {
		w.close()
		return 0, err
	}
	status, keepAlive, err := readResponse(w.r)
	if err != nil || !keepAlive {
		w.close()
	}
	return status, err
}

func (w *wireConn) close() {
	if w.c != nil {
		_ = w.c.Close()
		w.c = nil
	}
}

// readResponse reads one response to a GET, body included, and reports its status and
// whether the connection stays open.
func readResponse(r *bufio.Reader) (status int, keepAlive bool, err error) {
	line, err := readLine(r)
	if err != nil {
		return 0, false, err
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, false, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	status, ok := atoi(line[9:12])
	if !ok || status < 100 {
		return 0, false, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	keepAlive = line[7] == '1'
	h, err := readHeaders(r)
	if err != nil {
		return 0, false, err
	}
	if h.close {
		keepAlive = false
	}
	switch {
	case status < 200 || status == http.StatusNoContent || status == http.StatusNotModified:
		// no body
	case h.chunked:
		err = discardChunked(r)
	case h.length >= 0:
		_, err = r.Discard(h.length)
	default:
		// The body runs to the end of the connection.
		_, err = io.Copy(io.Discard, r)
		keepAlive = false
	}
	return status, keepAlive, err
}

// framing is what the headers of a message say about its body and connection.
type framing struct {
	length  int // -1 when absent
	chunked bool
	close   bool
}

// readHeaders reads header lines up to the empty one, keeping only the framing.
func readHeaders(r *bufio.Reader) (framing, error) {
	f := framing{length: -1}
	for {
		line, err := readLine(r)
		if err != nil {
			return f, err
		}
		if len(line) == 0 {
			return f, nil
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return f, fmt.Errorf("%w: header line %q", errMalformed, line)
		}
		name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, ok := atoi(value)
			if !ok || (f.length >= 0 && f.length != n) {
				return f, fmt.Errorf("%w: Content-Length %q", errMalformed, value)
			}
			f.length = n
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			f.chunked = bytes.EqualFold(value, []byte("chunked"))
			if !f.chunked {
				return f, fmt.Errorf("%w: Transfer-Encoding %q", errMalformed, value)
			}
		case bytes.EqualFold(name, []byte("Connection")):
			f.close = bytes.EqualFold(value, []byte("close"))
		}
	}
}

func discardChunked(r *bufio.Reader) error {
	for {
		line, err := readLine(r)
		if err != nil {
			return err
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i] // chunk extensions
		}
		size, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 32)
		if err != nil || size < 0 {
			return fmt.Errorf("%w: chunk size %q", errMalformed, line)
		}
		if size == 0 {
			_, err := readHeaders(r) // trailers
			return err
		}
		if _, err := r.Discard(int(size)); err != nil {
			return err
		}
		if crlf, err := readLine(r); err != nil || len(crlf) != 0 {
			return fmt.Errorf("%w: chunk not followed by CRLF", errMalformed)
		}
	}
}

// readLine returns the next line without its CRLF; the slice is valid until the next read.
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil, errLineTooLong
	}
	if err != nil {
		if errors.Is(err, io.EOF) && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return bytes.TrimSuffix(line[:len(line)-1], []byte("\r")), nil
}

// atoi parses a non-negative decimal of at most nine digits.
func atoi(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// upstream is the bench's backend: it answers every request with the same small JSON body
// and the headers a net/http backend sends with it (Content-Type, Content-Length, Date).
type upstream struct {
	Addr string
	l    net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	open map[net.Conn]struct{}
}

const upstreamBody = `{"ok":true}`

// upstreamHead is the response up to the Date value; the body follows the date.
var upstreamHead = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
	strconv.Itoa(len(upstreamBody)) + "\r\nDate: "

func startUpstream() (*upstream, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	u := &upstream{Addr: l.Addr().String(), l: l, open: map[net.Conn]struct{}{}}
	u.wg.Add(1)
	go u.accept()
	return u, nil
}

func (u *upstream) accept() {
	defer u.wg.Done()
	for {
		c, err := u.l.Accept()
		if err != nil {
			return
		}
		u.mu.Lock()
		u.open[c] = struct{}{}
		u.mu.Unlock()
		u.wg.Add(1)
		go func() {
			defer u.wg.Done()
			serveUpstream(c)
			u.mu.Lock()
			delete(u.open, c)
			u.mu.Unlock()
			_ = c.Close()
		}()
	}
}

// Close stops accepting, closes every connection and waits for their goroutines.
func (u *upstream) Close() {
	_ = u.l.Close()
	u.mu.Lock()
	for c := range u.open {
		_ = c.Close()
	}
	u.mu.Unlock()
	u.wg.Wait()
}

// serveUpstream answers the requests of one connection until it closes or sends something
// this server does not read (a chunked body, a malformed line), which gets a 400 and a close.
func serveUpstream(c net.Conn) {
	r := bufio.NewReaderSize(c, maxLine)
	w := bufio.NewWriterSize(c, 1024)
	date := make([]byte, 0, len(http.TimeFormat))
	for {
		line, err := readLine(r)
		if err != nil {
			return
		}
		if bytes.Count(line, []byte(" ")) != 2 || !bytes.HasSuffix(line, []byte(" HTTP/1.1")) {
			badRequest(w)
			return
		}
		h, err := readHeaders(r)
		if err != nil || h.chunked {
			badRequest(w)
			return
		}
		if h.length > 0 {
			if _, err := r.Discard(h.length); err != nil {
				return
			}
		}
		w.WriteString(upstreamHead)
		date = time.Now().UTC().AppendFormat(date[:0], http.TimeFormat)
		w.Write(date)
		w.WriteString("\r\n\r\n" + upstreamBody)
		if h.close {
			_ = w.Flush()
			return
		}
		// Pipelined requests already read are answered in one write.
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return
			}
		}
	}
}

func badRequest(w *bufio.Writer) {
	w.WriteString("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	_ = w.Flush()
}
