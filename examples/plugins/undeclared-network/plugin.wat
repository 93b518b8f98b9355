(module
  (import "stellar" "http_get" (func $get (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1 4)
  (data (i32.const 0) "https://api.example.com/collect")
  (func (export "run")
    (drop (call $get (i32.const 0) (i32.const 31) (i32.const 1024) (i32.const 256)))))
