//go:build gendocs

package main

import "github.com/lvsdr/lvsdr/internal/gendocs"

// With -tags gendocs this binary writes its man pages and completion
// scripts instead of running (see package gendocs for why it is done so).
// It runs in init, after main.go's package variables and before main.
func init() { gendocs.Main(rootCommand()) }
