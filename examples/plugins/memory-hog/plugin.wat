(module
  (memory (export "memory") 1)
  (func (export "run")
    ;; Grow by 1 MiB until the host says no, then fail.
    (loop $more
      (br_if $more (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    unreachable))
