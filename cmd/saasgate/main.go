package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/FerretDB/FerretDB/ferretdb"
	_ "go.mongodb.org/mongo-driver/mongo"
	_ "github.com/redis/go-redis/v9"
	_ "github.com/golang-jwt/jwt/v5"
	_ "github.com/pquerna/otp"
	_ "github.com/stripe/stripe-go/v76"
)

func main() { caddycmd.Main() }
