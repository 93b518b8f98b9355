(module
  (import "stellar" "log" (func $log (param i32 i32)))
  (memory (export "memory") 1 4)
  (data (i32.const 0) "broken")
  (func (export "run")
    (call $log (i32.const 0) (i32.const 6))))
