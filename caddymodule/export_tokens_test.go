package caddymodule

// TokenCacheOf reports the verified-token cache a's requests use: which one it is (the same
// value for the same cache), how many tokens it holds and how many it has checked rather than
// answered from memory.
func TokenCacheOf(a *App) (cache any, cached int, checks uint64) {
	return a.tokens, a.tokens.Len(), a.tokens.Checks()
}
