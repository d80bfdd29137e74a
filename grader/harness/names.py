"""Method names students give each job, most common first. The grader's role finder reads
these lists too, so a class is recognised by the same names the harness will call."""

FORWARD = ("forward", "__call__", "fprop", "forward_pass", "_forward", "feed_forward",
           "feedforward", "fwd", "forward_prop", "forward_propagation", "propagate_forward")
BACKWARD = ("backward", "bprop", "backprop", "backward_pass", "_backward", "back_prop",
            "backpropagate", "backward_prop", "backward_propagation", "bwd", "propagate_backward")
LOSS_FORWARD = FORWARD + ("loss", "_loss", "compute_loss", "calc_loss", "get_loss", "cost")
LOSS_BACKWARD = BACKWARD + ("gradient", "grad", "derivative", "loss_grad", "dloss")
UPDATE = ("update", "step", "update_params", "update_parameters", "update_weights",
          "weight_update", "apply_gradients", "sgd", "sgd_update", "optimize", "sgd_step",
          "apply_update", "update_weight", "param_update", "gradient_step", "descend",
          "_update", "_step", "update_param", "apply_grads")
ZERO_GRAD = ("zero_grad", "zero_grads", "reset_grad", "reset_grads", "clear_grads", "zero_gradients")
TRAIN = ("train", "train_step", "train_batch", "fit", "train_on_batch", "fit_batch",
         "train_one_batch", "train_minibatch", "train_mini_batch", "update_mini_batch",
         "training_step", "learn", "run_batch", "train_epoch", "step")
EVALUATE = ("evaluate", "eval", "test", "score", "accuracy", "evaluate_accuracy",
            "compute_accuracy", "get_accuracy", "validate", "eval_model", "evaluation", "test_model")
MODULE_TRAIN = ("train", "train_model", "fit", "train_network", "train_net", "train_epoch",
                "run_epoch", "train_loop", "training", "run_training", "train_one_epoch",
                "fit_model", "do_train", "sgd", "trainer", "learn", "optimize")
MODULE_EVALUATE = ("evaluate", "eval", "evaluate_model", "compute_accuracy", "accuracy",
                   "get_accuracy", "validate", "eval_model", "test_model", "test", "evaluation")
