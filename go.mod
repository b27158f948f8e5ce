module github.com/kelpie-ai/kelpie

go 1.26.8

require github.com/google/btree v1.1.3
