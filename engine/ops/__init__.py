"""Operations read side: broker depths, throughput, workers, dead letters, inbox, scheduler."""
