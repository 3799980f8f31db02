"""The RL domain: stable-baselines3 policies trained by SB3's own `learn()`, with the ticket's mask held inside it."""
