package testenv

import "sync"

// AtOnce runs f(0) … f(n-1) in n goroutines released together once all have started, and
// returns when every one has returned: the shape of a race a test wants to provoke.
func AtOnce(n int, f func(i int)) {
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			f(i)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
}
