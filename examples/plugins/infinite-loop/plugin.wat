(module
  (memory (export "memory") 1 4)
  (func (export "run")
    (loop $forever (br $forever))))
