package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// cpuSeconds reads a process's user+system CPU time from /proc.
func cpuSeconds(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / 100 // USER_HZ
}

// rssMB reads a process's resident set size from /proc.
func rssMB(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// settledMemory reads a gateway's memory the same way every time, so that readings taken at
// different moments compare: a collection first (asked of its admin endpoint), then two seconds
// for the runtime to hand freed pages back to the system, then its RSS. Read straight away,
// RSS depends on where the process happens to be between two collections (the same idle
// gateway read 70 and 93 MB in two runs). heapMB is the live heap the collection left.
func settledMemory(adminPort, pid int) (rss, heapMB float64, err error) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/heap?gc=1&debug=1", adminPort))
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("admin answered %s", resp.Status)
	}
	heap := -1.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "# HeapAlloc = "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("HeapAlloc %q: %w", v, err)
			}
			heap = n / (1 << 20)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if heap < 0 {
		return 0, 0, fmt.Errorf("no HeapAlloc in the heap profile's statistics")
	}
	time.Sleep(2 * time.Second)
	return rssMB(pid), heap, nil
}
