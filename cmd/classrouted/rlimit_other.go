//go:build !unix

package main

import "errors"

var errNoRlimit = errors.New("no RLIMIT_NOFILE on this system")

func raiseFDLimit() (uint64, error) { return 0, errNoRlimit }

func fdLimit() (uint64, error) { return 0, errNoRlimit }
