namespace EdgeRunner.Models.Postprocessing.Sequence;

/// <summary>What a <see cref="HysteresisTrigger"/> did with one score.</summary>
public enum TriggerTransition
{
    /// <summary>No change.</summary>
    None,

    /// <summary>The condition started (the score stayed at or above the threshold long enough).</summary>
    Raised,

    /// <summary>The condition ended (the score stayed below the clear threshold long enough).</summary>
    Cleared,
}

/// <summary>
/// Turns a per-step score (an anomaly score, a speech probability) into raise/clear events with
/// hysteresis: raised once the score is at or above <see cref="Threshold"/> for
/// <see cref="RaiseSteps"/> consecutive steps, cleared once it is below <see cref="ClearThreshold"/>
/// for <see cref="ClearSteps"/> consecutive steps. The gap between the two thresholds keeps a score
/// hovering at the threshold from flapping. Allocation-free.
/// </summary>
public sealed class HysteresisTrigger
{
    private int _run;

    /// <summary>Creates a trigger. Throws <see cref="ArgumentOutOfRangeException"/> when the clear threshold is above the threshold or a step count is below 1.</summary>
    public HysteresisTrigger(double threshold, double clearThreshold, int raiseSteps = 1, int clearSteps = 1)
    {
        if (!(clearThreshold <= threshold))
        {
            throw new ArgumentOutOfRangeException(nameof(clearThreshold), clearThreshold, $"must not be above the threshold {threshold}");
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(raiseSteps, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(clearSteps, 1);
        Threshold = threshold;
        ClearThreshold = clearThreshold;
        RaiseSteps = raiseSteps;
        ClearSteps = clearSteps;
    }

    /// <summary>Score at or above which the condition is raised.</summary>
    public double Threshold { get; }

    /// <summary>Score below which a raised condition clears.</summary>
    public double ClearThreshold { get; }

    /// <summary>Consecutive steps at or above the threshold needed to raise.</summary>
    public int RaiseSteps { get; }

    /// <summary>Consecutive steps below the clear threshold needed to clear.</summary>
    public int ClearSteps { get; }

    /// <summary>Whether the condition is raised now.</summary>
    public bool Active { get; private set; }

    /// <summary>Feeds one step's score. NaN counts as neither above nor below (it breaks a run).</summary>
    public TriggerTransition Update(double score)
    {
        if (!Active)
        {
            _run = score >= Threshold ? _run + 1 : 0;
            if (_run >= RaiseSteps)
            {
                Active = true;
                _run = 0;
                return TriggerTransition.Raised;
            }
        }
        else
        {
            _run = score < ClearThreshold ? _run + 1 : 0;
            if (_run >= ClearSteps)
            {
                Active = false;
                _run = 0;
                return TriggerTransition.Cleared;
            }
        }

        return TriggerTransition.None;
    }

    /// <summary>Consecutive steps counted so far towards the next raise (or clear).</summary>
    public int PendingSteps => _run;

    /// <summary>Restores a saved condition (from a stream's checkpoint), so a restart neither repeats a raise nor forgets one.</summary>
    public void Restore(bool active, int pendingSteps)
    {
        Active = active;
        _run = Math.Max(0, pendingSteps);
    }

    /// <summary>Back to not raised (a stream reset).</summary>
    public void Reset()
    {
        Active = false;
        _run = 0;
    }
}
